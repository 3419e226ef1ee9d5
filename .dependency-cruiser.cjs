/**
 * The architecture rules, checked by `npm test` (npm run lint:deps): no import cycles, and
 * domain code (every capability folder but its handler.ts and http.ts) never imports an AWS
 * SDK, a Lambda library, an adapter, the composition root, the middleware or the local
 * runtime. The concrete tool registry reaches the domain only through the ToolRegistry port.
 */
const DOMAIN = '^lambdas/(shared|actions|intake|policy|approvals|saga|steps|receipts|keys|tools|ports|limits|observability)/';
const EDGE_FILES = '/(handler|http)\\.ts$';

module.exports = {
  forbidden: [
    { name: 'no-circular', severity: 'error', comment: 'Import cycles hide layering mistakes.', from: {}, to: { circular: true } },
    {
      name: 'domain-stays-pure',
      severity: 'error',
      comment: 'Domain code knows ports, not AWS, Lambda, HTTP middleware or wiring (DESIGN.md: layout).',
      from: { path: DOMAIN, pathNot: EDGE_FILES },
      to: {
        path: [
          '^lambdas/(adapters|composition|middleware)/',
          '^local/',
          'node_modules/@aws-sdk/',
          'node_modules/@aws-lambda-powertools/',
          'node_modules/@middy/',
          'node_modules/aws-xray-sdk',
        ],
      },
    },
    {
      name: 'registry-through-the-port',
      severity: 'error',
      comment: 'Capabilities receive the ToolRegistry port from the composition root.',
      from: { path: DOMAIN, pathNot: ['^lambdas/tools/', EDGE_FILES] },
      to: { path: '^lambdas/tools/registry\\.ts$' },
    },
    {
      name: 'ports-are-interfaces',
      severity: 'error',
      comment: 'Ports hold interfaces and the errors of their contract, nothing that runs a capability.',
      from: { path: '^lambdas/ports/' },
      to: { path: '^lambdas/', pathNot: '^lambdas/(ports|shared)/', dependencyTypesNot: ['type-only'] },
    },
  ],
  options: {
    tsPreCompilationDeps: true,
    tsConfig: { fileName: 'tsconfig.json' },
    doNotFollow: { path: 'node_modules' },
    exclude: { path: '^(cdk\\.out|\\.airlock)/' },
  },
};
