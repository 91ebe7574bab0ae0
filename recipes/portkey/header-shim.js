// A transparent loopback proxy that adds Portkey's routing headers to every request.
//
// The open-source Portkey gateway has no static routing config: each request says where it
// goes with `x-portkey-provider` and `x-portkey-custom-host` headers. gateproof contract cannot
// add request headers of its own, so this shim sits between them. It changes nothing else:
// method, path, headers (in their original order and case, duplicates kept) and body go through
// as they came, and the answer comes back the same way, streamed as it arrives.
//
// usage: node header-shim.js LISTEN_PORT PORTKEY_PORT MOCK_BASE_URL
'use strict';
const http = require('http');

const [listenPort, portkeyPort, customHost] = process.argv.slice(2);
if (!listenPort || !portkeyPort || !customHost) {
  console.error('usage: node header-shim.js LISTEN_PORT PORTKEY_PORT MOCK_BASE_URL');
  process.exit(2);
}
const ADDED = ['x-portkey-provider', 'openai', 'x-portkey-custom-host', customHost];

const server = http.createServer((req, res) => {
  const raw = [];
  for (let i = 0; i < req.rawHeaders.length; i += 2) {
    const name = req.rawHeaders[i].toLowerCase();
    if (name === 'x-portkey-provider' || name === 'x-portkey-custom-host') continue;
    raw.push(req.rawHeaders[i], req.rawHeaders[i + 1]);
  }
  const upstream = http.request(
    { host: '127.0.0.1', port: Number(portkeyPort), method: req.method, path: req.url, headers: [...raw, ...ADDED] },
    (answer) => {
      res.writeHead(answer.statusCode, answer.statusMessage, answer.rawHeaders);
      res.flushHeaders();
      answer.pipe(res);
    },
  );
  upstream.setTimeout(120000, () => upstream.destroy(new Error('upstream timeout')));
  upstream.on('error', (err) => {
    // never hide a shim failure as a gateway answer: say who failed
    if (!res.headersSent) {
      res.writeHead(599, { 'content-type': 'text/plain', 'x-recipe-shim-error': '1' });
    }
    res.end(`recipe header shim: ${err.message}\n`);
  });
  req.pipe(upstream);
});
server.keepAliveTimeout = 5000;
server.listen(Number(listenPort), '127.0.0.1', () => console.log(`shim on 127.0.0.1:${listenPort} -> portkey :${portkeyPort}`));
process.on('SIGTERM', () => server.close(() => process.exit(0)));
