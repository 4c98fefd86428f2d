/**
 * Node module resolution hook: lets a role or playbook written anywhere (a project without
 * node_modules, a temp dir) `import ... from 'verdandi'` and get this very engine, not a second copy.
 */
let target = '';

export async function initialize(data: { target: string }): Promise<void> {
  target = data.target;
}

type NextResolve = (specifier: string, context: unknown) => Promise<{ url: string }>;

export async function resolve(specifier: string, context: unknown, next: NextResolve) {
  if (specifier === 'verdandi' && target) return { url: target, shortCircuit: true };
  return next(specifier, context);
}
