// Starts the reference ATProto PDS (@atproto/pds) with an in-memory did:plc directory
// (@did-plc/server on a mock database), both on 127.0.0.1 only, for tests and examples.
//
//   node start.mjs --install DIR --port PORT --data DIR
//
// --install: where tools/pds/install put node_modules; --port: the PDS port (the PLC
// directory takes a free port of its own); --data: the PDS data directory, wiped first
// (the PLC state is in memory, so DIDs from an earlier run would no longer resolve).
// Prints one line `atdata-pds ready {json}` on stdout once both servers answer, then
// runs until SIGTERM/SIGINT. Facts and gotchas: ATPROTO.md (shared notes) and README.
import { once } from 'node:events'
import fs from 'node:fs'
import { createRequire } from 'node:module'
import path from 'node:path'
import crypto from 'node:crypto'
import { pathToFileURL } from 'node:url'

const HOST = '127.0.0.1'

function parseArgs(argv) {
  const args = {}
  for (let i = 0; i < argv.length; i += 2) {
    const key = argv[i].replace(/^--/, '')
    if (!['install', 'port', 'data'].includes(key) || argv[i + 1] === undefined) {
      throw new Error(`usage: node start.mjs --install DIR --port PORT --data DIR (bad argument ${argv[i]})`)
    }
    args[key] = argv[i + 1]
  }
  for (const key of ['install', 'port', 'data']) {
    if (!args[key]) throw new Error(`missing --${key}`)
  }
  return args
}

// Import a package from the install directory (this script lives in the repository,
// its node_modules in the cache directory).
async function load(installDir, name) {
  const require = createRequire(path.join(installDir, 'package.json'))
  return import(pathToFileURL(require.resolve(name)).href)
}

async function listen(app, port) {
  // Not pds.start()/PlcServer.start(): those listen on every interface.
  const server = app.listen(port, HOST)
  await once(server, 'listening')
  return server
}

async function main() {
  const args = parseArgs(process.argv.slice(2))
  const plcModule = await load(args.install, '@did-plc/server')
  const { PlcServer, Database } = plcModule.default ?? plcModule
  const { Secp256k1Keypair } = await load(args.install, '@atproto/crypto')
  const { PDS, readEnv } = await load(args.install, '@atproto/pds')

  fs.rmSync(args.data, { recursive: true, force: true })
  fs.mkdirSync(path.join(args.data, 'blobs'), { recursive: true })

  const plc = PlcServer.create({ db: Database.mock(), port: 0 })
  const plcServer = await listen(plc.app, 0)
  const plcPort = plcServer.address().port

  const rotationKey = await Secp256k1Keypair.create({ exportable: true })
  Object.assign(process.env, {
    PDS_HOSTNAME: 'localhost',
    PDS_PORT: String(args.port),
    PDS_DATA_DIRECTORY: args.data,
    PDS_BLOBSTORE_DISK_LOCATION: path.join(args.data, 'blobs'),
    PDS_JWT_SECRET: crypto.randomBytes(16).toString('hex'),
    PDS_ADMIN_PASSWORD: crypto.randomBytes(16).toString('hex'),
    PDS_PLC_ROTATION_KEY_K256_PRIVATE_KEY_HEX: Buffer.from(await rotationKey.export()).toString('hex'),
    // A hostname, not an IP: the DID resolver refuses IP hosts.
    PDS_DID_PLC_URL: `http://localhost:${plcPort}`,
    PDS_DEV_MODE: 'true',
    PDS_INVITE_REQUIRED: 'false',
    PDS_SERVICE_HANDLE_DOMAINS: '.test',
    PDS_BSKY_APP_VIEW_URL: 'http://localhost:1',
    PDS_BSKY_APP_VIEW_DID: 'did:web:appview.invalid',
    PDS_RATE_LIMITS_ENABLED: 'false',
    PDS_CRAWLERS: '',
    // The storageBlobs lexicon allows 50 MiB shards; the PDS default is 5 MB.
    PDS_BLOB_UPLOAD_LIMIT: String(50 * 1024 * 1024),
    LOG_ENABLED: process.env.LOG_ENABLED ?? 'false',
  })
  const pds = await PDS.fromEnv(readEnv())
  await pds.ctx.sequencer.start()
  const pdsServer = await listen(pds.app, Number(args.port))

  const stop = async (signal) => {
    pdsServer.close()
    plcServer.close()
    await pds.destroy().catch(() => {})
    process.exit(signal === 'SIGINT' ? 130 : 0)
  }
  process.on('SIGTERM', () => stop('SIGTERM'))
  process.on('SIGINT', () => stop('SIGINT'))
  const info = { pds: `http://localhost:${args.port}`, plc: `http://localhost:${plcPort}`, pid: process.pid }
  console.log(`atdata-pds ready ${JSON.stringify(info)}`)
}

main().catch((err) => {
  console.error(`atdata-pds failed to start: ${err?.stack ?? err}`)
  process.exit(1)
})
