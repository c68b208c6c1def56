// Timestamped progress lines (minutes:seconds since the bench started) and a sleep.

export const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

const benchStart = Date.now();
export function log(message) {
  const s = Math.round((Date.now() - benchStart) / 1000);
  console.log(
    `[${String(Math.floor(s / 60)).padStart(2, '0')}:${String(s % 60).padStart(2, '0')}] ${message}`,
  );
}
