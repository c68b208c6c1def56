// CPU contention for bench/identify/repro.mjs: spins in bursts of 20-80 ms with pauses of 0-10 ms,
// so the scheduler keeps preempting the bench's other processes at irregular moments.
process.on('message', (message) => {
  if (message?.cmd === 'stop') process.exit(0);
});
function burst() {
  const until = performance.now() + 20 + Math.random() * 60;
  while (performance.now() < until) {
    // spin
  }
  setTimeout(burst, Math.random() * 10);
}
burst();
