/**
 * The secrets a workflow names (`secrets.NAME`, `secrets['NAME']`), GITHUB_TOKEN aside: the
 * console warns that it cannot give them yet (they would be empty, as GitHub leaves a missing
 * secret), so nobody deploys with an empty key by surprise.
 */
export function secretsUsed(text: string): string[] {
  const names = new Set<string>()
  for (const m of text.matchAll(
    /\bsecrets\s*(?:\.\s*([A-Za-z_][A-Za-z0-9_]*)|\[\s*['"]([^'"]+)['"]\s*\])/g,
  )) {
    const name = (m[1] ?? m[2])!
    if (name.toUpperCase() !== 'GITHUB_TOKEN') names.add(name)
  }
  return [...names].sort()
}
