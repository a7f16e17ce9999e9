/**
 * prom-client metrics fed in plain numbers on the hot path and read at scrape time. prom-client
 * validates and hashes the label set on every `inc`/`observe` (about a microsecond each here);
 * a series of these is resolved once, and a request only adds to its fields.
 */
import { Counter, Histogram, type Registry } from 'prom-client';

/** One counter series whose increments wait in a number until the next scrape. */
export class PendingSeries {
  pending = 0;
  constructor(readonly labels: Record<string, string>) {}

  inc(value = 1): void {
    this.pending += value;
  }
}

/** A prom-client counter whose series hand their sums over in its `collect()`. */
export class BufferedCounter {
  readonly counter: Counter<string>;
  private readonly series: PendingSeries[] = [];

  constructor(registry: Registry, name: string, help: string, labelNames: string[]) {
    const series = this.series;
    this.counter = new Counter({
      name,
      help,
      labelNames,
      registers: [registry],
      collect() {
        for (const one of series) {
          if (one.pending === 0) continue;
          this.inc(one.labels, one.pending);
          one.pending = 0;
        }
      },
    });
  }

  labels(labels: Record<string, string>): PendingSeries {
    const series = new PendingSeries(labels);
    this.series.push(series);
    return series;
  }
}

/** One histogram series: counts per bucket (not cumulative; the last one is +Inf), sum and count. */
export class HistogramSeries {
  readonly counts: Float64Array;
  sum = 0;
  count = 0;

  constructor(
    readonly labels: Record<string, string>,
    private readonly bounds: readonly number[],
  ) {
    this.counts = new Float64Array(bounds.length + 1);
  }

  observe(value: number): void {
    const bounds = this.bounds;
    let bucket = 0;
    while (bucket < bounds.length && value > bounds[bucket]!) bucket++;
    this.counts[bucket]!++;
    this.sum += value;
    this.count++;
  }
}

type HistogramData = Awaited<ReturnType<Histogram<string>['get']>>;

/** A sample as prom-client's registry renders it (its histogram's own shape: `le` first, then the series labels). */
interface Sample {
  value: number;
  labels: Record<string, string | number>;
  sharedLabels?: Record<string, string>;
  metricName: string;
  /** prom-client's buckets carry `exemplar: null` without exemplars. */
  exemplar?: null;
}

/**
 * A prom-client `Histogram` whose series are `HistogramSeries` kept here: it renders them
 * itself, in the shape prom-client's histogram renders its own, so the registry's text and JSON
 * output are unchanged. Series are made with `series()`, not prom-client's `labels()`/`observe()`.
 */
export class BufferedHistogram extends Histogram<string> {
  private readonly all: HistogramSeries[] = [];

  constructor(
    registry: Registry,
    private readonly metricName: string,
    private readonly helpText: string,
    labelNames: string[],
    private readonly bounds: number[],
  ) {
    super({ name: metricName, help: helpText, labelNames, buckets: bounds, registers: [registry] });
  }

  /** A new series with these labels (the caller keeps it: one per label set). */
  series(labels: Record<string, string>): HistogramSeries {
    const series = new HistogramSeries(labels, this.bounds);
    this.all.push(series);
    return series;
  }

  /** What the registry's text output reads (prom-client's histogram has the same method). */
  async getForPromString(): Promise<{ name: string; help: string; type: 'histogram'; values: Sample[]; aggregator: 'sum' }> {
    const values: Sample[] = [];
    for (const series of this.all) if (series.count > 0) this.samples(series, values);
    return { name: this.metricName, help: this.helpText, type: 'histogram', values, aggregator: 'sum' };
  }

  /** The series as prom-client's `Histogram#get()` gives them: the series labels and `le` in one object. */
  override async get(): Promise<HistogramData> {
    const data = await this.getForPromString();
    const values = data.values.map(({ sharedLabels, labels, ...rest }) => ({ ...rest, labels: { ...labels, ...sharedLabels } }));
    // prom-client's typings call the type an enum and ask for `collect`; its histogram returns the string and no `collect`.
    return { ...data, values } as unknown as HistogramData;
  }

  override reset(): void {
    // prom-client's constructor calls reset() before this class's fields exist.
    if (this.all === undefined) return;
    for (const series of this.all) {
      series.counts.fill(0);
      series.sum = 0;
      series.count = 0;
    }
  }

  private samples(series: HistogramSeries, values: Sample[]): void {
    const bucketName = `${this.metricName}_bucket`;
    let cumulative = 0;
    this.bounds.forEach((bound, index) => {
      cumulative += series.counts[index]!;
      values.push({ value: cumulative, labels: { le: bound }, sharedLabels: series.labels, metricName: bucketName, exemplar: null });
    });
    values.push({ value: series.count, labels: { le: '+Inf' }, sharedLabels: series.labels, metricName: bucketName, exemplar: null });
    values.push({ value: series.sum, labels: {}, sharedLabels: series.labels, metricName: `${this.metricName}_sum` });
    values.push({ value: series.count, labels: {}, sharedLabels: series.labels, metricName: `${this.metricName}_count` });
  }
}
