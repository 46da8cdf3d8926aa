/**
 * Module hooks for a user's node modules (see userModuleHooks in compiled-cli.mjs), registered
 * after tsx so that they run first:
 *
 * - `animind` and `zod` resolve to the CLI's own copies, wherever the importing module lies on
 *   disk: a user's module in a folder with no node_modules (or a project with a zod of its own)
 *   gets the very classes and schemas the CLI checks it with. `animind` is resolved so from any
 *   module; `zod` only from one outside every node_modules folder, so that a package the user's
 *   module imports keeps the zod it was installed with.
 * - When the CLI runs compiled, an import that resolves to one of its TypeScript sources gets the
 *   compiled module instead, the one the CLI already runs.
 * - A TypeScript module outside node_modules is an ES module, as the README's node is, whatever
 *   package.json (or none) its folder has: tsx would otherwise hand it to the CommonJS loader,
 *   which cannot load a file with `import` in it.
 */
let redirects = new Map();
/** Bare package name → the URL of a module that imports it as the CLI does. */
let shared = new Map();

export function initialize(data) {
  redirects = new Map(Object.entries(data.redirects));
  shared = new Map(Object.entries(data.shared));
}

const IN_PACKAGES = /[/\\]node_modules[/\\]/;
const TYPESCRIPT = /\.(ts|mts|tsx)$/;

/** The package a bare specifier names (`zod/mini` → `zod`); undefined for a relative, absolute or URL one. */
function packageName(specifier) {
  if (/^[./]|^[a-z][a-z0-9+.-]*:/i.test(specifier)) return undefined;
  const parts = specifier.split('/');
  return specifier.startsWith('@') ? parts.slice(0, 2).join('/') : parts[0];
}

/** The module to resolve `specifier` from: the CLI's, for a shared package imported by a user's module. */
function parentFor(specifier, parentURL) {
  const name = packageName(specifier);
  const from = name && shared.get(name);
  if (!from || !parentURL?.startsWith('file:')) return parentURL;
  return name === 'animind' || !IN_PACKAGES.test(parentURL) ? from : parentURL;
}

export async function resolve(specifier, context, nextResolve) {
  const parentURL = parentFor(specifier, context.parentURL);
  const resolved = await nextResolve(specifier, parentURL === context.parentURL ? context : { ...context, parentURL });
  const compiled = redirects.get(resolved.url);
  if (compiled) return { url: compiled, format: 'module', shortCircuit: true };
  const url = resolved.url.split('?')[0];
  if (url.startsWith('file:') && TYPESCRIPT.test(url) && !IN_PACKAGES.test(url))
    return { ...resolved, format: 'module' };
  return resolved;
}
