/** `yardmaster validate <file>...`: every problem of every file, as `file:line:col: message`. */
import { formatProblem, InvalidSourceError } from '../core/source/source-error'
import { loadWorkflow } from '../core/workflow/parse-workflow'
import { EXIT, type ParsedArgs } from './args'
import type { CliIo } from './output'

export async function validateCommand(args: ParsedArgs, io: CliIo): Promise<number> {
  if (!args.positionals.length) {
    io.err('yardmaster validate: which files? usage: yardmaster validate <workflow.yml>...\n')
    return EXIT.invalid
  }
  let bad = 0
  for (const file of args.positionals) {
    try {
      const wf = await loadWorkflow(file)
      io.out(`${file}: ok (${wf.jobs.length} job${wf.jobs.length === 1 ? '' : 's'})\n`)
    } catch (e) {
      if (!(e instanceof InvalidSourceError)) throw e
      bad++
      for (const p of e.problems) io.err(formatProblem(p) + '\n')
    }
  }
  return bad ? EXIT.invalid : EXIT.ok
}
