// The simulator's pure parts: routing formula, guild store, snowflakes, limiters, the session-start
// budget, option validation, close-code policy and CLI parsing. Clocks are injected, never waited on.
import { afterEach, describe, expect, it, vi } from 'vitest';
import { CliUsageError, parseCliArgs } from '../src/cliArgs.js';
import { closeCodeEndsSession, FATAL_CLOSE_CODES, isSendableCloseCode } from '../src/closeCodes.js';
import { GuildStore, seededRandom } from '../src/guilds.js';
import { LoopLateness } from '../src/gateway/loopLateness.js';
import { IdentifyLimiter } from '../src/identifyLimiter.js';
import {
  DEFAULT_SIM_OPTIONS,
  resolveSimOptions,
  SimOptionsError,
  type DiscordSimOptions,
} from '../src/options.js';
import { SendRateLimiter } from '../src/sendRateLimiter.js';
import { SessionStartBudget } from '../src/sessionStartBudget.js';
import {
  DISCORD_EPOCH,
  isSnowflake,
  makeSnowflake,
  shardForGuild,
  SnowflakeGenerator,
} from '../src/snowflake.js';

afterEach(() => {
  vi.restoreAllMocks();
});

/** A uniformly random unsigned 64-bit integer from the test's own seeded PRNG. */
function random64(random: () => number): bigint {
  const high = BigInt(Math.floor(random() * 2 ** 32));
  const low = BigInt(Math.floor(random() * 2 ** 32));
  return (high << 32n) | low;
}

function randomInt(random: () => number, min: number, max: number): number {
  return min + Math.floor(random() * (max - min + 1));
}

describe('shardForGuild', () => {
  it('matches floor(id / 2^22) % shards computed with BigInt division, for random 64-bit ids', () => {
    const random = seededRandom(42);
    for (let i = 0; i < 5000; i++) {
      const id = random64(random);
      const shards = randomInt(random, 1, i % 2 === 0 ? 300 : 1_000_000);
      expect(shardForGuild(id.toString(), shards)).toBe(Number((id / 4_194_304n) % BigInt(shards)));
    }
  });

  it('handles the extremes', () => {
    expect(shardForGuild('0', 1)).toBe(0);
    expect(shardForGuild('4194303', 7)).toBe(0); // below 2^22: timestamp part 0
    expect(shardForGuild('4194304', 7)).toBe(1);
    expect(shardForGuild('18446744073709551615', 1000)).toBe(Number(((1n << 42n) - 1n) % 1000n));
    // A real-looking id: a guild created 2020-01-01, 16 shards.
    const id = makeSnowflake(Date.UTC(2020, 0, 1), 1, 2, 3);
    expect(shardForGuild(id, 16)).toBe((Date.UTC(2020, 0, 1) - DISCORD_EPOCH) % 16);
  });

  it('throws on something that is not an id rather than routing it somewhere', () => {
    expect(() => shardForGuild('not-a-number', 2)).toThrow();
  });
});

describe('isSnowflake', () => {
  it.each([
    ['0', true],
    ['175928847299117063', true],
    ['18446744073709551615', true],
    ['18446744073709551616', false],
    ['-1', false],
    ['', false],
    ['12a', false],
    [' 12', false],
    ['1'.repeat(21), false],
    [123, false],
    [null, false],
  ])('%j → %s', (value, expected) => {
    expect(isSnowflake(value)).toBe(expected);
  });
});

describe('GuildStore', () => {
  /** Checks every guild index is in exactly one shard list, the one its id routes to. */
  function checkPartition(store: GuildStore, shardCount: number): void {
    const seen = new Array<number>(store.size).fill(0);
    const problems: string[] = [];
    for (let shard = 0; shard < shardCount; shard++) {
      for (const index of store.guildsOfShard(shard, shardCount)) {
        seen[index]!++;
        const routed = shardForGuild(store.id(index), shardCount);
        if (routed !== shard)
          problems.push(`guild ${index} listed on shard ${shard}, its id routes to ${routed}`);
        if (store.shardOf(index, shardCount) !== shard)
          problems.push(`shardOf(${index}) disagrees with its list`);
      }
    }
    seen.forEach((count, index) => count !== 1 && problems.push(`guild ${index} is in ${count} lists`));
    expect(problems, `${store.size} guilds over ${shardCount} shards`).toEqual([]);
  }

  it('for random shard counts 1..300 and seeds, every guild lands in exactly one shard: (id >> 22) % count', () => {
    const random = seededRandom(7);
    const shardCounts = [1, 2, 3, 16, 299, 300];
    for (let i = 0; i < 60; i++) shardCounts.push(randomInt(random, 1, 300));
    for (const [i, shardCount] of shardCounts.entries()) {
      const seed = randomInt(random, 0, 2 ** 31 - 1);
      const store = new GuildStore(randomInt(random, 0, 1500), seed);
      checkPartition(store, shardCount);
      // Guilds added after the per-count index was built land in it too.
      store.add(randomInt(random, 1, 200));
      checkPartition(store, shardCount);
      // And an index built after the additions agrees.
      checkPartition(store, ((shardCount + i) % 300) + 1);
    }
  });

  it('a shard id outside the count has no guilds', () => {
    const store = new GuildStore(50, 1);
    expect(store.guildsOfShard(5, 5)).toEqual([]);
  });

  it('ids are unique, increasing, valid snowflakes, and the same for the same seed', () => {
    const a = new GuildStore(2000, 99);
    const b = new GuildStore(2000, 99);
    const c = new GuildStore(2000, 100);
    const ids = Array.from({ length: a.size }, (_, i) => a.id(i));
    expect(ids).toEqual(Array.from({ length: b.size }, (_, i) => b.id(i)));
    expect(ids).not.toEqual(Array.from({ length: c.size }, (_, i) => c.id(i)));
    for (let i = 0; i < ids.length; i++) {
      expect(isSnowflake(ids[i])).toBe(true);
      if (i > 0) expect(BigInt(ids[i]!) > BigInt(ids[i - 1]!)).toBe(true);
    }
  });

  it('a GUILD_CREATE names its guild and its three channels (general, read-only, hidden)', () => {
    const store = new GuildStore(3, 1);
    const create = store.guildCreate(2, '1', new Date(0).toISOString());
    expect(create['id']).toBe(store.id(2));
    expect(create['unavailable']).toBe(false);
    expect(create['channels']).toEqual([
      expect.objectContaining({ id: store.channelId(2), type: 0, name: 'general' }),
      // @everyone (the guild id) is denied SEND_MESSAGES, then VIEW_CHANNEL.
      expect.objectContaining({
        id: store.channelId(2, 'read-only'),
        permission_overwrites: [{ id: store.id(2), type: 0, allow: '0', deny: '2048' }],
      }),
      expect.objectContaining({
        id: store.channelId(2, 'hidden'),
        permission_overwrites: [{ id: store.id(2), type: 0, allow: '0', deny: '1024' }],
      }),
    ]);
  });

  it('maps generated channel and guild ids back, and no other id', () => {
    const store = new GuildStore(50, 3);
    for (const index of [0, 17, 49]) {
      expect(store.indexOfGuild(store.id(index))).toBe(index);
      for (const kind of ['general', 'read-only', 'hidden'] as const)
        expect(store.channelOf(store.channelId(index, kind))).toEqual({ index, kind });
      expect(store.channelOf(store.id(index))).toBeNull();
      expect(store.indexOfGuild(store.channelId(index))).toBeNull();
    }
    for (const foreign of ['1', '0', '18446744073709551615', '175928847299117063'])
      expect([store.indexOfGuild(foreign), store.channelOf(foreign)]).toEqual([null, null]);
  });
});

describe('makeSnowflake', () => {
  it('round-trips timestamp, worker, process and increment through Discord’s documented masks', () => {
    const random = seededRandom(3);
    for (let i = 0; i < 5000; i++) {
      const timestamp = DISCORD_EPOCH + randomInt(random, 0, 2 ** 41 - 1);
      const worker = randomInt(random, 0, 31);
      const processId = randomInt(random, 0, 31);
      const increment = randomInt(random, 0, 4095);
      const id = BigInt(makeSnowflake(timestamp, worker, processId, increment));
      expect(Number(id >> 22n) + DISCORD_EPOCH).toBe(timestamp);
      expect(Number((id & 0x3e0000n) >> 17n)).toBe(worker);
      expect(Number((id & 0x1f000n) >> 12n)).toBe(processId);
      expect(Number(id & 0xfffn)).toBe(increment);
    }
  });

  it('masks parts that overflow their field instead of corrupting the others', () => {
    const id = BigInt(makeSnowflake(DISCORD_EPOCH + 1000, 32 + 5, 32 + 6, 4096 + 7));
    expect(Number(id >> 22n)).toBe(1000);
    expect(Number((id & 0x3e0000n) >> 17n)).toBe(5);
    expect(Number((id & 0x1f000n) >> 12n)).toBe(6);
    expect(Number(id & 0xfffn)).toBe(7);
  });
});

describe('SnowflakeGenerator', () => {
  function expectUniqueIncreasing(ids: string[]): void {
    expect(new Set(ids).size).toBe(ids.length);
    for (let i = 1; i < ids.length; i++) {
      if (!(BigInt(ids[i]!) > BigInt(ids[i - 1]!)))
        throw new Error(`id ${i} (${ids[i]}) is not above id ${i - 1} (${ids[i - 1]})`);
    }
  }

  it('yields 20k unique, increasing ids on the real clock', () => {
    const generator = new SnowflakeGenerator(3);
    const ids = Array.from({ length: 20_000 }, () => generator.next());
    expectUniqueIncreasing(ids);
    for (const id of ids.slice(0, 10)) expect(Number((BigInt(id) & 0x3e0000n) >> 17n)).toBe(3);
  });

  it('stays unique and increasing with a frozen clock (more than 4096 ids in one millisecond)', () => {
    vi.spyOn(Date, 'now').mockReturnValue(DISCORD_EPOCH + 10_000_000);
    const generator = new SnowflakeGenerator();
    expectUniqueIncreasing(Array.from({ length: 20_000 }, () => generator.next()));
  });

  it('stays unique and increasing when the clock steps backwards', () => {
    let now = DISCORD_EPOCH + 50_000_000;
    vi.spyOn(Date, 'now').mockImplementation(() => (now -= 3));
    const generator = new SnowflakeGenerator();
    expectUniqueIncreasing(Array.from({ length: 20_000 }, () => generator.next()));
  });
});

describe('SendRateLimiter', () => {
  it('allows exactly `limit` payloads in a window, then refuses', () => {
    const limiter = new SendRateLimiter(3, 1000);
    expect([limiter.take(0), limiter.take(1), limiter.take(2)]).toEqual([true, true, true]);
    expect(limiter.take(3)).toBe(false);
    expect(limiter.take(999)).toBe(false);
  });

  it('slides: each old payload frees one slot exactly windowMs after it was taken', () => {
    const limiter = new SendRateLimiter(3, 1000);
    limiter.take(0);
    limiter.take(1);
    limiter.take(2);
    expect(limiter.take(999)).toBe(false);
    expect(limiter.take(1000)).toBe(true); // the payload at 0 left the window
    expect(limiter.take(1000)).toBe(false); // the one at 1 has not
    expect(limiter.take(1001)).toBe(true);
    expect(limiter.take(1002)).toBe(true);
    expect(limiter.take(1002)).toBe(false);
    expect(limiter.take(1999)).toBe(false);
    expect(limiter.take(2000)).toBe(true);
  });

  it('Discord’s 120 per 60 s: the 121st payload inside the window is refused', () => {
    const limiter = new SendRateLimiter(120, 60_000);
    for (let i = 0; i < 120; i++) expect(limiter.take(i * 100)).toBe(true);
    expect(limiter.take(59_999)).toBe(false);
    expect(limiter.take(60_000)).toBe(true);
  });

  it('a limit of 1 works', () => {
    const limiter = new SendRateLimiter(1, 10);
    expect(limiter.take(0)).toBe(true);
    expect(limiter.take(9)).toBe(false);
    expect(limiter.take(10)).toBe(true);
  });
});

describe('IdentifyLimiter', () => {
  it('refuses and counts a second IDENTIFY of one key inside the window; other keys are free', () => {
    const limiter = new IdentifyLimiter(2, 5000);
    expect(limiter.attempt(0, 4, 1000)).toBe(true);
    expect(limiter.attempt(1, 4, 1000)).toBe(true); // key 1
    expect(limiter.attempt(2, 4, 5999)).toBe(false); // key 0, 4999 ms later
    expect(limiter.attempt(3, 4, 1001)).toBe(false); // key 1
    expect(limiter.violations).toBe(2);
    expect(limiter.records().map((r) => [r.shard[0], r.rateLimitKey, r.outcome])).toEqual([
      [0, 0, 'ready'],
      [1, 1, 'ready'],
      [2, 0, 'rate-limited'],
      [3, 1, 'rate-limited'],
    ]);
  });

  it('allows the key again exactly one window after the last allowed IDENTIFY (a refused one does not extend it)', () => {
    const limiter = new IdentifyLimiter(1, 5000);
    expect(limiter.attempt(0, 2, 0)).toBe(true);
    expect(limiter.attempt(1, 2, 4000)).toBe(false);
    expect(limiter.attempt(1, 2, 5000)).toBe(true);
    expect(limiter.attempt(0, 2, 9999)).toBe(false);
    expect(limiter.attempt(0, 2, 10_000)).toBe(true);
    expect(limiter.violations).toBe(2);
  });

  it('keys are shard_id % max_concurrency whatever the shard count', () => {
    const limiter = new IdentifyLimiter(16, 5000);
    for (let shard = 0; shard < 16; shard++) expect(limiter.attempt(shard, 32, 0)).toBe(true);
    for (let shard = 16; shard < 32; shard++) expect(limiter.attempt(shard, 32, 1)).toBe(false);
    for (let shard = 16; shard < 32; shard++) expect(limiter.attempt(shard, 32, 5000)).toBe(true);
    expect(limiter.violations).toBe(16);
  });

  it('an IDENTIFY inside the window only because the earlier one was read late is let through as unjudged, not a violation', () => {
    const limiter = new IdentifyLimiter(1, 5000);
    // The first was read 300 ms late: it arrived between 700 and 1000.
    expect(limiter.attempt(0, 2, 1000, 300)).toBe(true);
    // Read 4,800 ms after it, but possibly 5,100 ms after it arrived: the referee cannot tell.
    expect(limiter.attempt(1, 2, 5800, 0)).toBe(true);
    // Read 4,000 ms after that one, which was read on time: a violation whatever the lateness.
    expect(limiter.attempt(0, 2, 9800, 900)).toBe(false);
    expect(limiter.violations).toBe(1);
    expect(limiter.unjudged).toBe(1);
    expect(limiter.records().map((r) => [r.outcome, r.unjudged, r.readLateMs])).toEqual([
      ['ready', false, 300],
      ['ready', true, 0],
      ['rate-limited', false, 900],
    ]);
  });

  it('judges as if on time when the simulator reads on time (property: lateness 0 never makes an unjudged one)', () => {
    const random = seededRandom(7);
    for (let run = 0; run < 200; run++) {
      const late = new IdentifyLimiter(2, 1000);
      const onTime = new IdentifyLimiter(2, 1000);
      let now = 0;
      for (let i = 0; i < 30; i++) {
        now += Math.floor(random() * 1500);
        const shard = Math.floor(random() * 4);
        expect(late.attempt(shard, 4, now, 0)).toBe(onTime.attempt(shard, 4, now));
      }
      expect(late.unjudged).toBe(0);
      expect(late.violations).toBe(onTime.violations);
    }
  });

  it('LoopLateness measures how long the event loop was unavailable', async () => {
    const lateness = new LoopLateness();
    try {
      await new Promise((resolve) => setTimeout(resolve, 30));
      const blockedUntil = performance.now() + 120;
      while (performance.now() < blockedUntil); // the loop is busy: nothing can be read
      expect(lateness.readLatenessMs()).toBeGreaterThanOrEqual(120);
      // Free again: a few ticks later it is back to about a tick (polled: the CPU may be busy).
      let settled = Number.POSITIVE_INFINITY;
      for (let i = 0; i < 500 && settled >= 120; i++) {
        await new Promise((resolve) => setTimeout(resolve, 20));
        settled = lateness.readLatenessMs();
      }
      expect(settled).toBeLessThan(120);
    } finally {
      lateness.stop();
    }
  });

  it('a zero window never refuses', () => {
    const limiter = new IdentifyLimiter(1, 0);
    for (let i = 0; i < 5; i++) expect(limiter.attempt(0, 1, 7)).toBe(true);
    expect(limiter.violations).toBe(0);
  });

  it('keeps only the newest records up to its log limit', () => {
    const limiter = new IdentifyLimiter(1, 0, 3);
    for (let shard = 0; shard < 5; shard++) limiter.attempt(shard, 5, shard);
    expect(limiter.records().map((r) => r.shard[0])).toEqual([2, 3, 4]);
  });
});

describe('SessionStartBudget', () => {
  const DAY = 86_400_000;

  it('spends down to zero; spending with none left resets the token', () => {
    let now = 1_000_000;
    const budget = new SessionStartBudget(3, 2, () => now);
    expect(budget.spend()).toBe(true);
    expect(budget.spend()).toBe(true);
    expect(budget.remaining).toBe(0);
    expect(budget.tokenReset).toBe(false);
    expect(budget.spend()).toBe(false);
    expect(budget.tokenReset).toBe(true);
    expect(budget.remaining).toBe(0);
    now += 1;
    expect(budget.resetAfterMs).toBe(DAY - 1);
  });

  it('refills to the total once the day is over', () => {
    let now = 0;
    const budget = new SessionStartBudget(5, 1, () => now);
    budget.spend();
    expect(budget.remaining).toBe(0);
    now = DAY - 1;
    expect(budget.resetAfterMs).toBe(1);
    expect(budget.remaining).toBe(0);
    now = DAY;
    expect(budget.spend()).toBe(true);
    expect(budget.remaining).toBe(4);
    expect(budget.resetAfterMs).toBe(DAY);
  });

  it('set() clamps to 0..total', () => {
    const budget = new SessionStartBudget(10, 10, () => 0);
    budget.set(-5);
    expect(budget.remaining).toBe(0);
    budget.set(99);
    expect(budget.remaining).toBe(10);
    budget.set(4);
    expect(budget.remaining).toBe(4);
  });

  it('a budget that starts at zero resets the token on the first spend', () => {
    const budget = new SessionStartBudget(1000, 0, () => 0);
    expect(budget.spend()).toBe(false);
    expect(budget.tokenReset).toBe(true);
  });
});

describe('resolveSimOptions', () => {
  it('fills Discord-like defaults and derived values', () => {
    const options = resolveSimOptions();
    expect(options).toMatchObject(DEFAULT_SIM_OPTIONS);
    expect(options.shards).toBe(1); // 100 guilds
    expect(options.sessionStartRemaining).toBe(1000);
    expect(options.heartbeatToleranceMs).toBe(Math.round(41_250 / 2));
    expect(Object.isFrozen(options)).toBe(true);
    expect(resolveSimOptions({ guilds: 2500 }).shards).toBe(3);
    expect(resolveSimOptions({ guilds: 0 }).shards).toBe(1);
    expect(resolveSimOptions({ heartbeatIntervalMs: 500 }).heartbeatToleranceMs).toBe(1000);
    expect(resolveSimOptions({ sessionStartTotal: 7 }).sessionStartRemaining).toBe(7);
    expect(resolveSimOptions({ guilds: undefined } as unknown as Partial<DiscordSimOptions>).guilds).toBe(
      100,
    );
  });

  it('keeps explicit values', () => {
    const options = resolveSimOptions({
      shards: 9,
      maxConcurrency: 4,
      heartbeatToleranceMs: 0,
      sessionStartRemaining: 3,
    });
    expect(options).toMatchObject({
      shards: 9,
      maxConcurrency: 4,
      heartbeatToleranceMs: 0,
      sessionStartRemaining: 3,
    });
  });

  const numeric: Array<keyof DiscordSimOptions> = [
    'port',
    'guilds',
    'shards',
    'maxConcurrency',
    'identifyWindowMs',
    'sessionStartTotal',
    'sessionStartRemaining',
    'heartbeatIntervalMs',
    'heartbeatToleranceMs',
    'sessionTimeoutMs',
    'maxGuildsPerShard',
    'largeBotShardFactor',
    'allowedPrivilegedIntents',
    'sendLimit',
    'sendWindowMs',
    'maxPayloadBytes',
    'replayBufferLimit',
    'reconnectCloseAfterMs',
    'restGlobalPerSecond',
    'invalidRequestLimit',
    'banMs',
    'interactionResponseMs',
    'restMessagesKept',
    'gatewayBotLimit',
    'gatewayBotResetMs',
    'seed',
  ];
  const badNumbers: unknown[] = [-1, 1.5, Number.NaN, Number.POSITIVE_INFINITY, '5', null, 1e15];

  it.each(numeric)('a bad %s is an error naming it', (option) => {
    for (const value of badNumbers) {
      let error: unknown;
      try {
        resolveSimOptions({ [option]: value } as Partial<DiscordSimOptions>);
      } catch (caught) {
        error = caught;
      }
      expect(error, `${option} = ${String(value)}`).toBeInstanceOf(SimOptionsError);
      expect((error as SimOptionsError).option, `${option} = ${String(value)}`).toBe(option);
      expect((error as SimOptionsError).message).toContain(`"${option}"`);
      expect((error as SimOptionsError).code).toBe('SIM_ERR_BAD_OPTION');
    }
  });

  it.each([
    ['shards', 0],
    ['maxConcurrency', 0],
    ['heartbeatIntervalMs', 9],
    ['maxPayloadBytes', 63],
    ['port', 65_536],
    ['sendLimit', 0],
    ['invalidRequestLimit', 0],
    ['banMs', 0],
    ['interactionResponseMs', 900_001],
    ['restMessagesKept', 0],
  ] as const)('%s = %s is outside its range', (option, value) => {
    expect(() => resolveSimOptions({ [option]: value })).toThrow(new RegExp(`"${option}"`));
  });

  it.each([
    ['host', ''],
    ['host', 5],
    ['token', ''],
    ['token', 'has space'],
    ['token', 42],
    ['splitCompressedFrames', 'yes'],
  ] as const)('a bad %s (%j) is an error naming it', (option, value) => {
    expect(() => resolveSimOptions({ [option]: value } as unknown as Partial<DiscordSimOptions>)).toThrow(
      expect.objectContaining({ option }),
    );
  });

  it('an unknown option is rejected by name', () => {
    expect(() => resolveSimOptions({ shardz: 2 } as unknown as Partial<DiscordSimOptions>)).toThrow(
      expect.objectContaining({
        option: 'shardz',
        message: expect.stringContaining('not a discord-sim option'),
      }),
    );
  });

  it('sessionStartRemaining above sessionStartTotal is rejected', () => {
    expect(() => resolveSimOptions({ sessionStartTotal: 5, sessionStartRemaining: 6 })).toThrow(
      expect.objectContaining({ option: 'sessionStartRemaining' }),
    );
    expect(resolveSimOptions({ sessionStartTotal: 5, sessionStartRemaining: 5 }).sessionStartRemaining).toBe(
      5,
    );
  });
});

describe('close codes', () => {
  it.each([
    [1000, true],
    [1001, true],
    [4000, false],
    [4001, false],
    [4002, false],
    [4003, false],
    [4004, true],
    [4005, false],
    [4007, true],
    [4008, false],
    [4009, true],
    [4010, true],
    [4011, true],
    [4012, true],
    [4013, true],
    [4014, true],
    [4200, false], // @discordjs/ws closes with this when it means to resume
    [1006, false], // dropped TCP
    [1011, false],
    [3000, false],
  ])('closeCodeEndsSession(%i) is %s', (code, ends) => {
    expect(closeCodeEndsSession(code)).toBe(ends);
  });

  it('the fatal codes are exactly Discord’s', () => {
    expect([...FATAL_CLOSE_CODES].sort()).toEqual([4004, 4010, 4011, 4012, 4013, 4014]);
  });

  it.each([
    [1000, true],
    [1003, true],
    [1004, false],
    [1005, false],
    [1006, false],
    [1015, false],
    [2999, false],
    [3000, true],
    [4999, true],
    [5000, false],
    [4000.5, false],
    [Number.NaN, false],
  ])('isSendableCloseCode(%s) is %s', (code, ok) => {
    expect(isSendableCloseCode(code)).toBe(ok);
  });
});

describe('parseCliArgs', () => {
  it('maps every flag of the documented command line to its option', () => {
    const argv = ['--port', '0', '--token', 'T', '--guilds', '50', '--shards', '2', '--max-concurrency', '2'];
    argv.push(
      '--identify-window-ms',
      '100',
      '--session-start-total',
      '30',
      '--heartbeat-interval-ms',
      '2000',
    );
    expect(parseCliArgs(argv)).toMatchObject({
      help: false,
      options: {
        port: 0,
        token: 'T',
        guilds: 50,
        shards: 2,
        maxConcurrency: 2,
        identifyWindowMs: 100,
        sessionStartTotal: 30,
        heartbeatIntervalMs: 2000,
      },
    });
    expect(parseCliArgs(argv).options).toEqual({
      port: 0,
      token: 'T',
      guilds: 50,
      shards: 2,
      maxConcurrency: 2,
      identifyWindowMs: 100,
      sessionStartTotal: 30,
      heartbeatIntervalMs: 2000,
    });
  });

  it('maps the other flags, --flag=value form and the boolean flag', () => {
    const { options } = parseCliArgs([
      '--host=0.0.0.0',
      '--session-start-remaining=3',
      '--heartbeat-tolerance-ms',
      '10',
      '--session-timeout-ms',
      '11',
      '--max-guilds-per-shard',
      '12',
      '--large-bot-shard-factor',
      '13',
      '--allowed-privileged-intents',
      '0',
      '--send-limit',
      '14',
      '--send-window-ms',
      '15',
      '--max-payload-bytes',
      '100',
      '--replay-buffer-limit',
      '16',
      '--reconnect-close-after-ms',
      '17',
      '--rest-global-per-second',
      '18',
      '--invalid-request-limit',
      '22',
      '--ban-ms',
      '23',
      '--interaction-response-ms',
      '24',
      '--rest-messages-kept',
      '25',
      '--gateway-bot-limit',
      '19',
      '--gateway-bot-reset-ms',
      '20',
      '--seed',
      '21',
      '--split-compressed-frames',
    ]);
    expect(options).toEqual({
      host: '0.0.0.0',
      sessionStartRemaining: 3,
      heartbeatToleranceMs: 10,
      sessionTimeoutMs: 11,
      maxGuildsPerShard: 12,
      largeBotShardFactor: 13,
      allowedPrivilegedIntents: 0,
      sendLimit: 14,
      sendWindowMs: 15,
      maxPayloadBytes: 100,
      replayBufferLimit: 16,
      reconnectCloseAfterMs: 17,
      restGlobalPerSecond: 18,
      invalidRequestLimit: 22,
      banMs: 23,
      interactionResponseMs: 24,
      restMessagesKept: 25,
      gatewayBotLimit: 19,
      gatewayBotResetMs: 20,
      seed: 21,
      splitCompressedFrames: true,
    });
    // Every parsed set of options is one resolveSimOptions accepts.
    expect(() => resolveSimOptions(options)).not.toThrow();
  });

  it('no flags: no options, no help', () => {
    const parsed = parseCliArgs([]);
    expect(parsed.help).toBe(false);
    expect(parsed.options).toEqual({});
  });

  it.each([['--help'], ['-h']])('%s asks for help', (flag) => {
    expect(parseCliArgs([flag]).help).toBe(true);
  });

  it.each([
    ['--shards', 'abc'],
    ['--port', ''],
    ['--guilds', ' '],
    ['--max-concurrency', 'Infinity'],
    ['--seed', '1e999'],
    ['--ban-ms', 'an hour'],
    ['--invalid-request-limit', ''],
  ])('%s %j is a usage error naming the flag', (flag, value) => {
    expect(() => parseCliArgs([flag, value])).toThrow(CliUsageError);
    expect(() => parseCliArgs([flag, value])).toThrow(flag);
  });

  it('--log-level takes a pino level (warn by default); anything else is a usage error naming the flag', () => {
    expect(parseCliArgs([]).logLevel).toBe('warn');
    expect(parseCliArgs(['--log-level', 'debug']).logLevel).toBe('debug');
    expect(parseCliArgs(['--log-level', 'silent']).options).toEqual({});
    expect(() => parseCliArgs(['--log-level', 'loud'])).toThrow(CliUsageError);
    expect(() => parseCliArgs(['--log-level', 'loud'])).toThrow('--log-level');
  });

  it('an unknown flag is a usage error naming it', () => {
    expect(() => parseCliArgs(['--shardz', '2'])).toThrow(CliUsageError);
    expect(() => parseCliArgs(['--shardz', '2'])).toThrow(/shardz/);
  });

  it('a positional argument or a flag without its value is a usage error', () => {
    expect(() => parseCliArgs(['extra'])).toThrow(CliUsageError);
    expect(() => parseCliArgs(['--shards'])).toThrow(/shards/);
  });
});
