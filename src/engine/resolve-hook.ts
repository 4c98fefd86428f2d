/**
 * Node module resolution hook for roles and playbooks:
 * - `import ... from 'verdandi'` resolves to this very engine, wherever the file lives (a project
 *   without node_modules, a temp dir), so there is never a second copy of it;
 * - a `.ts` file outside node_modules is an ES module even without a `"type": "module"` package.json
 *   (Ansible users' projects have none), as the documented `import`/`export default` syntax implies.
 */
let target = '';

export async function initialize(data: { target: string }): Promise<void> {
  target = data.target;
}

interface Resolved {
  url: string;
  format?: string | null;
  shortCircuit?: boolean;
}
type NextResolve = (specifier: string, context: unknown) => Promise<Resolved>;

export async function resolve(specifier: string, context: unknown, next: NextResolve): Promise<Resolved> {
  if (specifier === 'verdandi' && target) return { url: target, shortCircuit: true };
  const resolved = await next(specifier, context);
  if (
    resolved.url.startsWith('file:') &&
    /\.m?ts$/.test(resolved.url) &&
    !resolved.url.includes('/node_modules/')
  ) {
    return { ...resolved, format: 'module' };
  }
  return resolved;
}
