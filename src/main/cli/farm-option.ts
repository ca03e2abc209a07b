import { defaultFarm } from '../core/farm/default-farm'
import { loadFarmFile } from '../core/farm/farm-file'
import type { Farm } from '../core/farm/farm-model'

/** `--farm FILE`, or the embedded default (this machine). */
export function loadFarm(file: string | undefined): Promise<Farm> {
  return file ? Promise.resolve(loadFarmFile(file)) : defaultFarm()
}
