import { defaultFarm } from '../core/farm/default-farm'
import { loadFarmFile, withPlatforms } from '../core/farm/farm-file'
import type { Farm } from '../core/farm/farm-model'

/** `--farm FILE`, or the embedded default (this machine), with `--platform LABEL=IMAGE` on top. */
export async function loadFarm(
  file: string | undefined,
  platforms: Record<string, string> = {},
): Promise<Farm> {
  return withPlatforms(file ? loadFarmFile(file) : await defaultFarm(), platforms)
}
