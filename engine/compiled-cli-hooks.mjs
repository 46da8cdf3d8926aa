/**
 * Module hooks for the compiled CLI (see compiled-cli.mjs): an import that resolves to one of
 * the CLI's TypeScript sources gets the compiled module instead, the one the CLI already runs.
 */
let redirects = new Map();

export function initialize(data) {
  redirects = new Map(Object.entries(data));
}

export async function resolve(specifier, context, nextResolve) {
  const resolved = await nextResolve(specifier, context);
  const compiled = redirects.get(resolved.url);
  return compiled ? { url: compiled, format: 'module', shortCircuit: true } : resolved;
}
