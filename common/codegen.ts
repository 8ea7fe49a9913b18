/**
 * Straight-line functions generated once, at load, from a list (columns, a record's fields). A loop over a list of
 * columns reads each column through a computed key and stores into arrays of several element
 * kinds, which V8 cannot specialise: resetting a slot's 29 columns that way cost 20 times the
 * hand-written stores. Generated code names every column, so each load and store is as fast as
 * hand-written code, while the list stays the only place a column is declared.
 *
 * Only identifiers checked by ident() and numbers reach the source; values travel as arguments.
 */

/** `name`, which must be a plain identifier (it is pasted into generated source). */
export function ident(name: string): string {
  if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(name)) throw new Error(`not an identifier: ${JSON.stringify(name)}`);
  return name;
}

/**
 * A function of `params` whose body is `body`; `env` names the values the body may refer to
 * (helpers, constants), bound once.
 */
export function generate<F>(params: readonly string[], body: string, env: Record<string, unknown> = {}): F {
  const names = Object.keys(env).map(ident);
  const make = new Function(...names, `return function (${params.map(ident).join(', ')}) {\n${body}\n};`) as (...v: unknown[]) => F;
  return make(...Object.values(env));
}
