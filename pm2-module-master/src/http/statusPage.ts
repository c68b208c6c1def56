import { createHash } from 'node:crypto';
import { PAGE_SCRIPT } from './pageScript.js';
import { PAGE_STYLE } from './pageStyle.js';
import { SHARD_STATES } from 'discluster-protocol';

const hash = (text: string) => `'sha256-${createHash('sha256').update(text, 'utf8').digest('base64')}'`;

/** Only the page's own inline style and script run, and it talks only to this server. */
export const STATUS_PAGE_CSP = [
  "default-src 'none'",
  `script-src ${hash(PAGE_SCRIPT)}`,
  `style-src ${hash(PAGE_STYLE)}`,
  "connect-src 'self'",
  'img-src data:',
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'",
].join('; ');

const legend = [...SHARD_STATES, 'unknown']
  .map(
    (state) =>
      `<li><span class="swatch" data-state="${state}"></span>${state === 'unknown' ? 'no report' : state} <b id="count-${state}">0</b></li>`,
  )
  .join('');

const fact = (id: string, label: string) => `<div><dt>${label}</dt><dd id="${id}">-</dd></div>`;

/**
 * The status page (`GET /`): one self-contained document, inline style and script, no external
 * URL and no build step. It fills itself from `/api/events`; see pageScript.ts.
 */
export const STATUS_PAGE_HTML = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Discluster status</title>
<link rel="icon" href="data:,">
<style>${PAGE_STYLE}</style>
</head>
<body>
<header>
<h1>Discluster</h1>
<dl class="facts">
${fact('bot', 'bot')}
${fact('shard-count', 'shards')}
${fact('max-concurrency', 'max_concurrency')}
${fact('epoch', 'epoch')}
${fact('master', 'master')}
${fact('hosts-online', 'hosts online')}
${fact('session-starts', 'session starts left*')}
</dl>
<span id="live" class="off">connecting...</span>
</header>
<div id="banner" role="alert" hidden></div>
<div id="reshard" role="status" hidden></div>
<div id="resplit" role="status" hidden></div>
<div id="notice" role="status" hidden></div>
<main>
<section>
<div class="bar"><h2>Shards <small id="ready-summary"></small></h2><ul class="legend">${legend}</ul></div>
<div id="grid" role="img" aria-label="one cell per shard, coloured by its state"></div>
</section>
<section>
<h2>Find a guild</h2>
<form id="which-form" autocomplete="off"><input id="which-input" inputmode="numeric" placeholder="guild id, e.g. 81384788765712384" aria-label="guild id"><button type="submit">Find</button></form>
<p id="which-result"></p>
</section>
<div class="tables">
<section><h2>Hosts</h2><div class="scroll"><table id="hosts"><thead><tr>
<th>host</th><th>role</th><th>state</th><th class="num">cores</th><th class="num">load 15m</th><th class="num">epoch</th><th class="num">clusters</th><th class="num">shards ready</th><th class="num">guilds</th>
</tr></thead><tbody></tbody></table></div></section>
<section><h2>Clusters</h2><div class="scroll"><table id="clusters"><thead><tr>
<th class="num">cluster</th><th>host</th><th>state</th><th class="num">restarts</th><th>shards</th><th class="num">ready</th><th class="num">guilds</th><th class="num">ping ms</th><th class="num">events</th><th>failure</th>
</tr></thead><tbody></tbody></table></div></section>
</div>
</main>
<footer>MASTER instance <span id="instance">-</span> · <a href="api/status">/api/status</a> · <a href="metrics">/metrics</a> ·
* session starts: as of MASTER's last GET /gateway/bot, not live</footer>
<script>${PAGE_SCRIPT}</script>
</body>
</html>
`;
