/**
 * Overwrites secret bytes in place. JavaScript cannot pin or lock memory and the garbage collector may
 * have copied a buffer before; wiping shortens how long secrets stay readable, it does not promise
 * that no copy exists (SECURITY.md, "What memory protection we have").
 */
export function wipe(...buffers: Array<Uint8Array | undefined | null>): void {
  for (const b of buffers) if (b) b.fill(0);
}
