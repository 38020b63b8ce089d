/**
 * The layer rules of DESIGN §7, checked by `npm test`.
 * Data flows one way: rpc -> service -> (policy, wallet, keystore) -> (chain, store).
 * wallet/, policy/ and crypto/ are pure (no I/O); signer/ must be provably network-free.
 */
const NETWORK_MODULES = '^(node:)?(net|http|https|http2|dgram|dns|tls|child_process|cluster|worker_threads)$';
const IO_MODULES = '^(node:)?(fs|fs/promises|net|http|https|http2|dgram|dns|tls|child_process|cluster|readline|worker_threads)$';
const NETWORK_PACKAGES = 'node_modules/(zeromq|level|classic-level|abstract-level)/';

module.exports = {
  forbidden: [
    { name: 'no-circular', severity: 'error', from: {}, to: { circular: true } },
    {
      name: 'daemon-never-loads-dev-tools',
      comment: 'dev mode, the demo, tests and benchmarks start bcoin and write secrets in plain files: the daemon never imports them.',
      severity: 'error',
      from: { path: '^src/' },
      to: { path: '^(dev|test|bench)/|node_modules/bcoin/' },
    },
    {
      name: 'pure-core-no-io',
      comment: 'wallet/, policy/ and crypto/ do no I/O: clock and randomness are passed in (DESIGN §7).',
      severity: 'error',
      from: { path: '^src/(wallet|policy|crypto)/' },
      to: { dependencyTypes: ['core'], path: IO_MODULES },
    },
    {
      name: 'pure-core-no-outer-layers',
      severity: 'error',
      from: { path: '^src/(wallet|policy|crypto)/' },
      to: { path: '^src/(chain|store|rpc|service|keystore|audit|client|cli|signer|config)/|^src/main\\.ts$|' + NETWORK_PACKAGES },
    },
    {
      name: 'signer-network-free',
      comment: 'The offline signer imports only wallet/ and crypto/ and never reaches network code, even transitively.',
      severity: 'error',
      from: { path: '^src/(signer/|cli/signer)' },
      to: { reachable: true, path: '^src/(chain|store|rpc|keystore|client|service|audit)/|' + NETWORK_PACKAGES },
    },
    {
      name: 'signer-no-network-builtins',
      severity: 'error',
      from: { path: '^src/(signer/|cli/signer)' },
      to: { reachable: true, path: NETWORK_MODULES },
    },
    {
      name: 'store-and-chain-are-leaves',
      severity: 'error',
      from: { path: '^src/(store|chain)/' },
      to: { path: '^src/(rpc|service|keystore|policy|audit|client|cli)/' },
    },
    {
      name: 'keystore-below-service',
      severity: 'error',
      from: { path: '^src/keystore/' },
      to: { path: '^src/(rpc|service|chain|store|policy|client|cli)/' },
    },
    {
      name: 'service-below-rpc',
      severity: 'error',
      from: { path: '^src/service/' },
      to: { path: '^src/(rpc|client|cli)/' },
    },
    {
      name: 'rpc-below-cli',
      severity: 'error',
      from: { path: '^src/(rpc|client)/' },
      to: { path: '^src/cli/' },
    },
    {
      name: 'client-is-standalone',
      comment: 'App servers import client/: it may share rpc/ and the wire types, but never pulls in daemon code.',
      severity: 'error',
      from: { path: '^src/client/' },
      to: { path: '^src/(service|keystore|store|chain|policy|wallet|audit)/', dependencyTypesNot: ['type-only'] },
    },
    {
      name: 'only-main-and-cli-compose',
      severity: 'error',
      from: { path: '^src/', pathNot: '^src/(main\\.ts|cli/)' },
      to: { path: '^src/(main\\.ts|cli/)' },
    },
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    tsPreCompilationDeps: true,
    tsConfig: { fileName: 'tsconfig.json' },
    enhancedResolveOptions: { extensions: ['.ts', '.js'], exportsFields: ['exports'], conditionNames: ['import', 'require', 'node', 'default'] },
    reporterOptions: { text: { highlightFocused: true } },
  },
};
