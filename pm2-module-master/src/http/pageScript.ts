import { SHARD_STATES } from 'discluster-protocol';

/**
 * The status page's script (inlined, plain ES2017, no dependencies; its hash goes into the page's
 * Content-Security-Policy). It renders each {@link PageSnapshot} pushed by `/api/events`, changing
 * only the grid cells whose state changed, and asks `/api/which` for the guild lookup. Data from
 * the fleet is only ever set as text, never as markup. The shard states are protocol's one list,
 * serialised into the script.
 */
export const PAGE_SCRIPT = String.raw`
(function () {
  'use strict';
  var STATES = ${JSON.stringify(SHARD_STATES)};
  var GOOD = { online: 'good', ready: 'good' };
  var BAD = { lost: 'bad', failed: 'bad', missing: 'bad' };
  var byId = function (id) { return document.getElementById(id); };
  var grid = byId('grid');
  var cells = [];
  var found = null;

  function setText(id, value) {
    var node = byId(id);
    if (node.textContent !== value) node.textContent = value;
  }

  function cellSize(count) {
    return count <= 64 ? 22 : count <= 512 ? 14 : count <= 2048 ? 11 : count <= 8192 ? 8 : 6;
  }

  function ensureGrid(count) {
    if (cells.length === count) return;
    var fragment = document.createDocumentFragment();
    cells = [];
    for (var i = 0; i < count; i++) {
      var cell = document.createElement('div');
      cell.className = 'cell';
      cell.dataset.shard = String(i);
      cell.dataset.state = 'unknown';
      cells.push(cell);
      fragment.appendChild(cell);
    }
    grid.replaceChildren(fragment);
    grid.style.setProperty('--cell', cellSize(count) + 'px');
    highlight(found);
  }

  function highlight(shardId) {
    if (found !== null && cells[found]) cells[found].classList.remove('found');
    found = shardId;
    if (found !== null && cells[found]) cells[found].classList.add('found');
  }

  function pill(value) {
    var span = document.createElement('span');
    span.className = 'pill ' + (GOOD[value] || BAD[value] || 'meh');
    span.textContent = value;
    return span;
  }

  function row(values, attributes) {
    var tr = document.createElement('tr');
    for (var key in attributes) tr.setAttribute(key, attributes[key]);
    values.forEach(function (value) {
      var td = document.createElement('td');
      if (value && typeof value === 'object' && value.nodeType) td.appendChild(value);
      else {
        td.textContent = String(value);
        if (typeof value === 'number') td.className = 'num';
      }
      tr.appendChild(td);
    });
    return tr;
  }

  function fillTable(id, rows) {
    var body = byId(id).tBodies[0];
    var fragment = document.createDocumentFragment();
    rows.forEach(function (tr) { fragment.appendChild(tr); });
    body.replaceChildren(fragment);
  }

  function sum(list, pick) {
    var total = 0;
    list.forEach(function (item) { total += pick(item); });
    return total;
  }

  function range(shards) {
    if (shards.length === 0) return '-';
    var ids = shards.map(function (shard) { return shard.id; });
    var low = Math.min.apply(null, ids);
    var high = Math.max.apply(null, ids);
    return low === high ? String(low) : low + '-' + high;
  }

  function meanPing(shards) {
    var pings = shards.map(function (shard) { return shard.ping; }).filter(function (ping) { return ping >= 0; });
    return pings.length ? Math.round(sum(pings, function (ping) { return ping; }) / pings.length) : '-';
  }

  function renderHeader(snap) {
    var status = snap.status;
    setText('instance', snap.instanceId);
    byId('notice').hidden = !snap.notice;
    setText('notice', snap.notice || '');
    setText('master', snap.leading ? 'up · leading' : 'standby');
    setText('bot', status ? status.bot : '-');
    setText('shard-count', status && status.shardCount !== null ? String(status.shardCount) : '-');
    setText('max-concurrency', status && status.maxConcurrency !== null ? String(status.maxConcurrency) : '-');
    setText('epoch', status && status.epoch !== null ? String(status.epoch) : '-');
    var starts = snap.sessionStarts;
    setText('session-starts', starts ? starts.remaining + ' / ' + starts.total : '-');
    var hosts = status ? status.hosts : [];
    var online = hosts.filter(function (host) { return host.state === 'online'; }).length;
    setText('hosts-online', status ? online + ' / ' + hosts.length : '-');
    var stopped = status && status.stopped;
    byId('banner').hidden = !stopped;
    setText('banner', stopped
      ? 'Fleet stopped: ' + stopped.reason + (stopped.code !== null ? ' (close code ' + stopped.code + ')' : '') +
        ' since ' + new Date(stopped.at).toLocaleString() + '. Nothing restarts until ' + '\u0060discluster restart\u0060' + '.'
      : '');
    var reshard = status && status.reshard;
    byId('reshard').hidden = !reshard;
    setText('reshard', reshard
      ? 'Resharding ' + reshard.from + ' \u2192 ' + reshard.to + ' shards: ' + reshard.ready + ' / ' + reshard.total +
        ' new shards ready' + (reshard.phase === 'switching' ? ', handing over' :
          (reshard.etaMs !== null ? ', about ' + Math.ceil(reshard.etaMs / 1000) + ' s to go at Discord\'s identify limit' : '')) +
        ' (' + reshard.reason + '). The old generation serves until the handover.'
      : '');
    var resplit = status && status.resplit;
    byId('resplit').hidden = !resplit;
    setText('resplit', resplit
      ? 'Re-splitting to ' + resplit.shardsPerCluster + ' shards per cluster: ' + resplit.clustersDone + ' / ' +
        resplit.clustersTotal + ' clusters done' +
        (resplit.waitingFor.length ? ', waiting for cluster(s) ' + resplit.waitingFor.join(', ') + ' to resume' : '') +
        ' (' + resplit.reason + '). Every shard resumes; none identifies.'
      : '');
  }

  function renderGrid(status) {
    var entries = [];
    var count = status ? status.shardCount || 0 : 0;
    (status ? status.hosts : []).forEach(function (host) {
      host.clusters.forEach(function (cluster) {
        cluster.shards.forEach(function (shard) {
          entries[shard.id] = { shard: shard, cluster: cluster, host: host };
          if (shard.id >= count) count = shard.id + 1;
        });
      });
    });
    ensureGrid(count);
    var counts = { unknown: 0 };
    STATES.forEach(function (state) { counts[state] = 0; });
    for (var i = 0; i < count; i++) {
      var entry = entries[i];
      var state = entry ? entry.shard.state : 'unknown';
      var title = entry
        ? 'shard ' + i + ' · ' + state + ' · ' + (entry.shard.ping >= 0 ? 'ping ' + entry.shard.ping + ' ms' : 'no ping yet') +
          ' · ' + entry.shard.guilds + ' guilds · cluster ' + entry.cluster.id + ' · host ' + entry.host.id
        : 'shard ' + i + ' · in no cluster';
      counts[state] += 1;
      var cell = cells[i];
      if (cell.dataset.state !== state) cell.dataset.state = state;
      if (cell.title !== title) cell.title = title;
    }
    for (var key in counts) if (byId('count-' + key)) setText('count-' + key, String(counts[key]));
    setText('ready-summary', count ? counts.ready + ' of ' + count + ' ready' : 'no plan yet');
  }

  // A cluster that gave up: where, why, and whether MASTER moved its shards or holds them down.
  function failureText(failure) {
    if (!failure) return '';
    var gaveUp = 'gave up on ' + failure.hosts.join(', then ') + ' (' + failure.attempts + ' failed starts: ' + failure.reason + ')';
    return failure.action === 'moved'
      ? 'moved to ' + failure.movedTo + ' · ' + gaveUp
      : 'HELD, shards down until \u0060discluster rebalance\u0060 · ' + failure.why + ' · ' + gaveUp;
  }

  function renderTables(snap) {
    var hosts = snap.status ? snap.status.hosts : [];
    fillTable('hosts', hosts.map(function (host) {
      var shards = [];
      host.clusters.forEach(function (cluster) { shards = shards.concat(cluster.shards); });
      var ready = shards.filter(function (shard) { return shard.state === 'ready'; }).length;
      return row([
        host.id, host.role, pill(host.drained ? host.state + ' · drained' : host.state), host.cores, Number(host.load15.toFixed(2)),
        host.epoch === null ? '-' : host.epoch, host.clusters.length, ready + ' / ' + shards.length,
        sum(shards, function (shard) { return shard.guilds; }),
      ], { 'data-host': host.id });
    }));
    var clusters = [];
    hosts.forEach(function (host) {
      host.clusters.forEach(function (cluster) { clusters.push({ host: host, cluster: cluster }); });
    });
    clusters.sort(function (a, b) { return a.cluster.id - b.cluster.id; });
    fillTable('clusters', clusters.map(function (item) {
      var shards = item.cluster.shards;
      var ready = shards.filter(function (shard) { return shard.state === 'ready'; }).length;
      return row([
        item.cluster.id, item.host.id, pill(item.cluster.state), item.cluster.restarts, range(shards),
        ready + ' / ' + shards.length, sum(shards, function (shard) { return shard.guilds; }),
        meanPing(shards), snap.clusterEvents[String(item.cluster.id)] || 0, failureText(item.cluster.failure),
      ], item.cluster.failure
        ? { 'data-cluster': String(item.cluster.id), 'data-failure': item.cluster.failure.action }
        : { 'data-cluster': String(item.cluster.id) });
    }));
  }

  function render(snap) {
    renderHeader(snap);
    renderGrid(snap.status);
    renderTables(snap);
    document.body.dataset.rendered = String(Number(document.body.dataset.rendered || 0) + 1);
  }

  function lookup(event) {
    event.preventDefault();
    var guild = byId('which-input').value.trim();
    var out = byId('which-result');
    out.className = 'pending';
    out.textContent = 'looking up ' + guild + '...';
    ['shard', 'cluster', 'host'].forEach(function (key) { delete out.dataset[key]; });
    fetch('api/which?guild=' + encodeURIComponent(guild), { headers: { accept: 'application/json' } })
      .then(function (response) {
        return response.json().then(function (body) { return { ok: response.ok, body: body }; });
      })
      .then(function (result) {
        if (!result.ok) throw new Error(result.body.error || 'lookup failed');
        var where = result.body;
        out.className = 'ok';
        out.dataset.shard = String(where.shardId);
        out.dataset.cluster = where.clusterId === null ? '' : String(where.clusterId);
        out.dataset.host = where.hostId || '';
        out.textContent = 'guild ' + where.guildId + ' \u2192 shard ' + where.shardId + ' of ' + where.shardCount +
          ' · cluster ' + (where.clusterId === null ? 'none' : where.clusterId) + ' · host ' + (where.hostId || 'none');
        highlight(where.shardId);
      })
      .catch(function (error) {
        out.className = 'error';
        out.textContent = error.message;
        highlight(null);
      });
  }

  function connect() {
    var live = byId('live');
    var source = new EventSource('api/events');
    source.onopen = function () { live.className = 'on'; live.textContent = 'live'; };
    source.onmessage = function (event) { render(JSON.parse(event.data)); };
    source.onerror = function () {
      live.className = 'off';
      live.textContent = 'reconnecting...';
      if (source.readyState === EventSource.CLOSED) setTimeout(connect, 5000);
    };
  }

  byId('which-form').addEventListener('submit', lookup);
  connect();
})();
`;
