// The @discordjs/proxy process of bench/rest: one @discordjs/rest behind an HTTP server that every
// bot process points its `api` at (the ecosystem's answer to shared limits). It forwards each
// caller's Authorization header.
import http from 'node:http';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const require = createRequire(path.join(root, 'package.json'));
const { REST } = require('@discordjs/rest');
const { proxyRequests } = require('@discordjs/proxy');

const { api } = JSON.parse(process.argv[2]);
const rest = new REST({ version: '10', api });
const server = http.createServer(proxyRequests(rest));
server.listen(0, '127.0.0.1', () => {
  process.send({ t: 'listening', api: `http://127.0.0.1:${server.address().port}/api` });
});
process.on('message', (message) => {
  if (message.cmd === 'stop') server.close(() => process.exit(0));
});
