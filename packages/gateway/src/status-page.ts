/**
 * The status page: plain HTML and a small script that polls the JSON endpoint every second and
 * fills the tables (no build step, no external resources). Text is set with `textContent`, never
 * as HTML, so a route name cannot inject markup.
 *
 * @example
 * res.end(statusPage('/_relay/status.json'));
 */
export function statusPage(jsonPath: string): string {
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Relay gateway status</title>
<style>
  body { font: 14px/1.4 system-ui, sans-serif; margin: 24px; color: #1d2330; background: #f7f8fa; }
  h1 { font-size: 20px; margin: 0 0 4px; }
  #summary { color: #55607a; margin-bottom: 16px; }
  table { border-collapse: collapse; width: 100%; background: #fff; box-shadow: 0 1px 2px #0002; }
  th, td { text-align: left; padding: 8px 10px; border-bottom: 1px solid #e6e8ee; vertical-align: top; }
  th { background: #eef0f5; font-weight: 600; }
  td.num { text-align: right; font-variant-numeric: tabular-nums; }
  td.match { white-space: nowrap; font-family: ui-monospace, monospace; font-size: 13px; }
  .target { display: block; white-space: nowrap; }
  .dot { display: inline-block; width: 10px; height: 10px; border-radius: 50%; margin-right: 6px; }
  .healthy .dot { background: #1a9c4b; } .unhealthy .dot { background: #d43a2f; } .unknown .dot { background: #9aa3b5; }
  .unhealthy { color: #b3261e; font-weight: 600; }
  #error { color: #b3261e; }
</style>
</head>
<body>
<h1>Relay gateway</h1>
<div id="summary">loading…</div>
<div id="error"></div>
<table>
  <thead><tr><th>route</th><th>match</th><th>targets</th><th>requests / min</th><th>errors / min</th><th>in flight</th><th>WebSockets</th></tr></thead>
  <tbody id="routes"></tbody>
</table>
<script>
const source = ${JSON.stringify(jsonPath)};
function cell(row, text, className) {
  const td = row.insertCell();
  td.textContent = String(text);
  if (className) td.className = className;
  return td;
}
function render(data) {
  document.getElementById('summary').textContent =
    data.workers.length + (data.workers.length === 1 ? ' worker (pid ' + data.workers[0].pid + ')' : ' workers') +
    ' · config generation ' + data.generation + ' · up ' + data.uptimeSeconds + ' s · ' +
    data.inFlight + ' in flight · ' + data.websocketSessions + ' WebSocket sessions' +
    (data.partial ? ' · some workers did not answer: partial figures' : '');
  const body = document.getElementById('routes');
  body.replaceChildren();
  for (const route of data.routes) {
    const row = body.insertRow();
    row.dataset.route = route.name;
    cell(row, route.name);
    cell(row, (route.match.host ? route.match.host.join(', ') : '*') + ' ' + route.match.path + (route.match.methods ? ' ' + route.match.methods.join(',') : ''), 'match');
    const targets = row.insertCell();
    for (const target of route.targets) {
      const line = document.createElement('span');
      line.className = 'target ' + target.health;
      line.dataset.health = target.health;
      const dot = document.createElement('span');
      dot.className = 'dot';
      line.append(dot, target.url + (target.dns ? ' (dns: ' + target.dns + ')' : '') + ' · ' + target.health + (target.ejected ? ' (ejected)' : '') + (target.lastError ? ' (' + target.lastError + ')' : target.lastStatus ? ' (' + target.lastStatus + ')' : ''));
      targets.append(line);
    }
    cell(row, route.requestsLastMinute, 'num');
    cell(row, route.errorsLastMinute, 'num');
    cell(row, route.inFlight, 'num');
    cell(row, route.websocketSessions, 'num');
  }
}
async function poll() {
  try {
    const response = await fetch(source, { cache: 'no-store' });
    render(await response.json());
    document.getElementById('error').textContent = '';
  } catch (error) {
    document.getElementById('error').textContent = 'status unavailable: ' + error.message;
  }
  setTimeout(poll, 1000);
}
poll();
</script>
</body>
</html>
`;
}
