import { execFile } from 'node:child_process';
import crypto from 'node:crypto';
import fsp from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { nkeys } from '@nats-io/transport-node';

type KeyPair = ReturnType<typeof nkeys.createUser>;

/**
 * Credentials for the NATS security tests (test/natsSecurity.*), all made offline in a temp dir:
 * a test PKI with openssl, and operator/account/user JWTs signed with the nkeys the NATS client
 * ships (what `nsc` would make), so nats-server 2.9 can require TLS, mutual TLS and `.creds`.
 */

const run = promisify(execFile);

/** A temp dir removed by `remove()` (call it in afterAll/afterEach). */
export interface TempDir {
  readonly dir: string;
  file(name: string): string;
  remove(): Promise<void>;
}

export async function makeTempDir(prefix: string): Promise<TempDir> {
  const dir = await fsp.mkdtemp(path.join(os.tmpdir(), prefix));
  return {
    dir,
    file: (name) => path.join(dir, name),
    remove: () => fsp.rm(dir, { recursive: true, force: true }),
  };
}

// ---- PKI ------------------------------------------------------------------------------------------

/** Paths of the test PKI's PEM files. */
export interface TestPki {
  /** The CA the server and the clients trust. */
  readonly ca: string;
  readonly serverCert: string;
  readonly serverKey: string;
  /** A client certificate (clientAuth) signed by `ca`. */
  readonly clientCert: string;
  readonly clientKey: string;
  /** A CA nobody trusts, and a client certificate it signed (same key as `clientKey`). */
  readonly otherCa: string;
  readonly otherClientCert: string;
}

const openssl = async (args: string[]): Promise<void> => {
  await run('openssl', args, { timeout: 30_000 });
};

/** A random positive serial (avoids openssl's `.srl` files). */
const serial = () =>
  `0x${crypto
    .randomBytes(8)
    .toString('hex')
    .replace(/^[89a-f]/, '1')}`;

async function makeCa(dir: TempDir, name: string, subject: string): Promise<{ cert: string; key: string }> {
  const cert = dir.file(`${name}.pem`);
  const key = dir.file(`${name}.key`);
  await openssl([
    'req',
    '-x509',
    '-newkey',
    'ec',
    '-pkeyopt',
    'ec_paramgen_curve:prime256v1',
    '-nodes',
    '-keyout',
    key,
    '-out',
    cert,
    '-days',
    '2',
    '-subj',
    `/CN=${subject}`,
    '-addext',
    'basicConstraints=critical,CA:TRUE',
    '-addext',
    'keyUsage=critical,keyCertSign,cRLSign',
  ]);
  return { cert, key };
}

async function makeLeaf(
  dir: TempDir,
  name: string,
  subject: string,
  extensions: string,
  signer: { cert: string; key: string },
  keyFile?: string,
): Promise<{ cert: string; key: string }> {
  const key = keyFile ?? dir.file(`${name}.key`);
  const csr = dir.file(`${name}.csr`);
  const ext = dir.file(`${name}.ext`);
  const cert = dir.file(`${name}.pem`);
  await fsp.writeFile(ext, extensions);
  await openssl([
    'req',
    ...(keyFile
      ? ['-new', '-key', keyFile]
      : ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', key]),
    '-out',
    csr,
    '-subj',
    `/CN=${subject}`,
  ]);
  await openssl([
    'x509',
    '-req',
    '-in',
    csr,
    '-CA',
    signer.cert,
    '-CAkey',
    signer.key,
    '-set_serial',
    serial(),
    '-days',
    '2',
    '-out',
    cert,
    '-extfile',
    ext,
  ]);
  return { cert, key };
}

/** A CA, a server certificate for 127.0.0.1/localhost, a client certificate, and an untrusted CA. */
export async function makeTestPki(dir: TempDir): Promise<TestPki> {
  const ca = await makeCa(dir, 'ca', 'Discluster Test CA');
  const other = await makeCa(dir, 'other-ca', 'Untrusted Test CA');
  const server = await makeLeaf(
    dir,
    'server',
    '127.0.0.1',
    'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\nbasicConstraints=CA:FALSE\n',
    ca,
  );
  const clientExt = 'extendedKeyUsage=clientAuth\nbasicConstraints=CA:FALSE\n';
  const client = await makeLeaf(dir, 'client', 'discluster-client', clientExt, ca);
  const otherClient = await makeLeaf(dir, 'other-client', 'discluster-client', clientExt, other, client.key);
  return {
    ca: ca.cert,
    serverCert: server.cert,
    serverKey: server.key,
    clientCert: client.cert,
    clientKey: client.key,
    otherCa: other.cert,
    otherClientCert: otherClient.cert,
  };
}

/** nats-server `tls { }` block requiring TLS with the test server certificate; `verify`: mutual TLS. */
export function tlsServerConfig(pki: TestPki, verify: boolean): string {
  return [
    'tls: {',
    `  cert_file: ${JSON.stringify(pki.serverCert)}`,
    `  key_file: ${JSON.stringify(pki.serverKey)}`,
    `  ca_file: ${JSON.stringify(pki.ca)}`,
    `  verify: ${verify}`,
    '  timeout: 5',
    '}',
    '',
  ].join('\n');
}

// ---- operator mode (JWT / .creds) -------------------------------------------------------------------

const encoder = new TextEncoder();
const decoder = new TextDecoder();
const base64url = (data: string | Uint8Array) => Buffer.from(data).toString('base64url');

const BASE32 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';
function base32(bytes: Uint8Array): string {
  let bits = 0;
  let value = 0;
  let out = '';
  for (const byte of bytes) {
    value = (value << 8) | byte;
    bits += 8;
    while (bits >= 5) {
      out += BASE32[(value >>> (bits - 5)) & 31];
      bits -= 5;
    }
  }
  if (bits > 0) out += BASE32[(value << (5 - bits)) & 31];
  return out;
}

/** A NATS JWT (`ed25519-nkey`) with `claims`, issued and signed by `issuer`. */
function signJwt(issuer: KeyPair, claims: Record<string, unknown>): string {
  const header = base64url(JSON.stringify({ typ: 'JWT', alg: 'ed25519-nkey' }));
  const body: Record<string, unknown> = {
    ...claims,
    iat: Math.floor(Date.now() / 1000),
    iss: issuer.getPublicKey(),
  };
  body['jti'] = base32(crypto.createHash('sha256').update(JSON.stringify(body)).digest());
  const payload = base64url(JSON.stringify(body));
  const signature = base64url(issuer.sign(encoder.encode(`${header}.${payload}`)));
  return `${header}.${payload}.${signature}`;
}

const UNLIMITED = { subs: -1, data: -1, payload: -1 };

function accountJwt(operator: KeyPair, account: KeyPair, name: string, jetstream: boolean): string {
  return signJwt(operator, {
    name,
    sub: account.getPublicKey(),
    nats: {
      type: 'account',
      version: 2,
      limits: {
        ...UNLIMITED,
        imports: -1,
        exports: -1,
        wildcards: true,
        conn: -1,
        leaf: -1,
        ...(jetstream ? { mem_storage: -1, disk_storage: -1, streams: -1, consumer: -1 } : {}),
      },
    },
  });
}

function credsText(jwt: string, user: KeyPair): string {
  return [
    '-----BEGIN NATS USER JWT-----',
    jwt,
    '------END NATS USER JWT------',
    '',
    '************************* IMPORTANT *************************',
    'NKEY Seed printed below can be used to sign and prove identity.',
    'NKEYs are sensitive and should be treated as secrets.',
    '',
    '-----BEGIN USER NKEY SEED-----',
    decoder.decode(user.getSeed()),
    '------END USER NKEY SEED------',
    '',
  ].join('\n');
}

/** A trusted operator with one JetStream-enabled account, resolved from memory by the server. */
export interface TestOperator {
  /** nats-server config: `operator`, `system_account`, `resolver: MEMORY`, `resolver_preload`. */
  readonly serverConfig: string;
  /** Writes `<name>.creds` for a new user of the account and returns its path. */
  userCreds(name: string): Promise<string>;
  /** Writes `<name>.creds` for a user of an account the server does not know. */
  untrustedCreds(name: string): Promise<string>;
}

export function makeTestOperator(dir: TempDir): TestOperator {
  const operator = nkeys.createOperator();
  const account = nkeys.createAccount();
  const system = nkeys.createAccount();
  const stranger = nkeys.createAccount();
  const operatorJwt = signJwt(operator, {
    name: 'discluster-test-operator',
    sub: operator.getPublicKey(),
    nats: { type: 'operator', version: 2, system_account: system.getPublicKey() },
  });
  const serverConfig = [
    `operator: ${operatorJwt}`,
    `system_account: ${system.getPublicKey()}`,
    'resolver: MEMORY',
    'resolver_preload: {',
    `  ${account.getPublicKey()}: ${accountJwt(operator, account, 'discluster', true)}`,
    `  ${system.getPublicKey()}: ${accountJwt(operator, system, 'SYS', false)}`,
    '}',
    '',
  ].join('\n');
  const writeCreds = async (name: string, issuer: KeyPair): Promise<string> => {
    const user = nkeys.createUser();
    const jwt = signJwt(issuer, {
      name,
      sub: user.getPublicKey(),
      nats: { type: 'user', version: 2, pub: {}, sub: {}, ...UNLIMITED },
    });
    const file = dir.file(`${name}.creds`);
    await fsp.writeFile(file, credsText(jwt, user), { mode: 0o600 });
    return file;
  };
  return {
    serverConfig,
    userCreds: (name) => writeCreds(name, account),
    untrustedCreds: (name) => writeCreds(name, stranger),
  };
}
