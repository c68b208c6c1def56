'use strict';
// Newline-delimited JSON over a socket, for bench/lib/probe.mjs and bench/lib/probe-client.cjs:
// calls `onMessage(object)` for every complete line that parses; other lines are skipped.
function onJsonLines(socket, onMessage) {
  socket.setEncoding('utf8');
  let buffer = '';
  socket.on('data', (chunk) => {
    buffer += chunk;
    let newline;
    while ((newline = buffer.indexOf('\n')) >= 0) {
      const line = buffer.slice(0, newline);
      buffer = buffer.slice(newline + 1);
      let message;
      try {
        message = JSON.parse(line);
      } catch {
        continue;
      }
      onMessage(message);
    }
  });
}

module.exports = { onJsonLines };
