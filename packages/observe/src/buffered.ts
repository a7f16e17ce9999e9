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

/**
 * The one series of each label set, however many relays ask for it: two relays under one `relay`
 * label (two mounts of a service, the gateway's old and new relays across a reload) share it, so
 * the exposition has each series once (Prometheus refuses a scrape with a series twice).
 */
class SeriesTable<S> {
  readonly all = new Map<string, S>();

  constructor(private readonly labelNames: readonly string[]) {}

  of(labels: Record<string, string>, make: () => S): S {
    const key = this.labelNames.map((name) => labels[name] ?? '').join('\u0000');
    let series = this.all.get(key);
    if (series === undefined) this.all.set(key, (series = make()));
    return series;
  }
}

/** A prom-client counter whose series hand their sums over in its `collect()`. */
export class BufferedCounter extends Counter<string> {
  private readonly table: SeriesTable<PendingSeries>;

  /** `beforeCollect`: adds what the counter must show but no request has added yet (open WebSocket sessions). */
  constructor(registry: Registry, name: string, help: string, labelNames: string[], beforeCollect?: () => void) {
    const table = new SeriesTable<PendingSeries>(labelNames);
    super({
      name,
      help,
      labelNames,
      registers: [registry],
      collect() {
        beforeCollect?.();
        for (const one of table.all.values()) {
          if (one.pending === 0) continue;
          this.inc(one.labels, one.pending);
          one.pending = 0;
        }
      },
    });
    this.table = table;
  }

  /** The series of these labels, made on first use (the caller keeps it). Not prom-client's `labels()`. */
  series(labels: Record<string, string>): PendingSeries {
    return this.table.of(labels, () => new PendingSeries(labels));
  }

  override reset(): void {
    super.reset();
    // prom-client's constructor calls reset() before this class's fields exist.
    if (this.table === undefined) return;
    // `registry.resetMetrics()`: increments not yet handed over go too.
    for (const one of this.table.all.values()) one.pending = 0;
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
  private readonly table: SeriesTable<HistogramSeries>;

  constructor(
    registry: Registry,
    private readonly metricName: string,
    private readonly helpText: string,
    labelNames: string[],
    /** The buckets' upper bounds. */
    readonly bounds: number[],
  ) {
    super({ name: metricName, help: helpText, labelNames, buckets: bounds, registers: [registry] });
    this.table = new SeriesTable(labelNames);
  }

  /** The series of these labels, made on first use (the caller keeps it). */
  series(labels: Record<string, string>): HistogramSeries {
    return this.table.of(labels, () => new HistogramSeries(labels, this.bounds));
  }

  /** What the registry's text output reads (prom-client's histogram has the same method). */
  async getForPromString(): Promise<{ name: string; help: string; type: 'histogram'; values: Sample[]; aggregator: 'sum' }> {
    const values: Sample[] = [];
    for (const series of this.table.all.values()) if (series.count > 0) this.samples(series, values);
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
    if (this.table === undefined) return;
    for (const series of this.table.all.values()) {
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
