// What a command prints for an error that ends it. The CLI's wording of the API's coded errors
// (lib/cli-errors.ts) comes with modules that load the native addon; where the addon itself is what failed to
// load, its own message (which says how to fix it) is printed instead.

export async function failureMessage(error: unknown): Promise<string> {
  try {
    const { cliMessage } = await import('../cli-errors.js');
    return cliMessage(error);
  } catch {
    return error instanceof Error ? error.message : String(error);
  }
}
