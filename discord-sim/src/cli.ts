#!/usr/bin/env node
import pino from 'pino';
import { CliUsageError, parseCliArgs, USAGE } from './cliArgs';
import { DiscordSim } from './DiscordSim';
import { SimOptionsError } from './options';

async function main(): Promise<void> {
  const { help, logLevel, options } = parseCliArgs(process.argv.slice(2));
  if (help) {
    process.stdout.write(`${USAGE}\n`);
    return;
  }
  // Logs go to stderr as JSON lines; stdout carries only the one JSON line with the URLs.
  const sim = new DiscordSim(options, {
    logger: pino({ name: 'discord-sim', level: logLevel }, pino.destination(2)),
  });
  const urls = await sim.listen();
  process.stdout.write(`${JSON.stringify(urls)}\n`);
  let stopping = false;
  const stop = (): void => {
    if (stopping) return;
    stopping = true;
    void sim.close().then(() => process.exit(0));
  };
  process.on('SIGINT', stop);
  process.on('SIGTERM', stop);
}

main().catch((error: unknown) => {
  if (error instanceof CliUsageError || error instanceof SimOptionsError) {
    process.stderr.write(`discord-sim: ${error.message.replace(/^discord-sim: /, '')}\n\n${USAGE}\n`);
    process.exit(2);
  }
  process.stderr.write(
    `discord-sim: could not start: ${error instanceof Error ? error.message : String(error)}\n`,
  );
  process.exit(1);
});
