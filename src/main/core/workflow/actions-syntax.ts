/**
 * GitHub's own workflow parser (@actions/workflow-parser): YAML, the workflow schema, allowed
 * expression contexts and functions, and job dependencies, with ranges. This module is the
 * only one that talks to it; the rest of core sees tokens and SourceProblems.
 */
import {
  convertWorkflowTemplate,
  isBasicExpression,
  isBoolean,
  isMapping,
  isNumber,
  isSequence,
  isString,
  NoOperationTraceWriter,
  parseWorkflow,
  type WorkflowTemplate,
} from '@actions/workflow-parser'
import { ErrorPolicy } from '@actions/workflow-parser/model/convert'
import type { MappingToken, TemplateToken } from '@actions/workflow-parser/templates/tokens/index'
import { LineCounter, parseDocument, visit } from 'yaml'
import type { SourceProblem } from '../source/source-error'

export type { MappingToken, TemplateToken }
export { isBasicExpression, isBoolean, isMapping, isNumber, isSequence, isString }

export interface ParsedSyntax {
  /** The raw token tree (every key the user wrote, with ranges); null when YAML itself failed. */
  root: MappingToken | null
  /** GitHub's converted model (jobs, needs, normalised `if`s); null when conversion failed. */
  template: WorkflowTemplate | null
  problems: SourceProblem[]
}

export async function parseActionsSyntax(file: string, text: string): Promise<ParsedSyntax> {
  const parsed = parseWorkflow({ name: file, content: text }, new NoOperationTraceWriter())
  const root = parsed.value && isMapping(parsed.value) ? parsed.value : null
  if (root) mendBlockScalars(root, text)
  let template: WorkflowTemplate | null = null
  if (parsed.value) {
    // TryConversion: report dependency errors together with schema errors, in one pass.
    template = await convertWorkflowTemplate(parsed.context, parsed.value, undefined, {
      errorPolicy: ErrorPolicy.TryConversion,
    }).catch(() => null)
  }
  const seen = new Set<string>()
  const problems: SourceProblem[] = []
  for (const e of parsed.context.errors.getErrors()) {
    const at = e.range?.start ?? positionInMessage(e.message)
    // YAML errors carry a source excerpt after the first line; we show our own position.
    const message = (e.rawMessage.replace(/^.*?\(Line: \d+, Col: \d+\): /, '').split('\n')[0] ?? '').replace(
      / at line \d+, column \d+:$/,
      '',
    )
    const key = `${at.line}:${at.column}:${message}`
    if (seen.has(key)) continue
    seen.add(key)
    problems.push({ file, line: at.line, col: at.column, path: '', message })
  }
  // One YAML syntax error sets off a cascade of follow-on ones; the first says what to fix.
  const syntax = problems.filter((p) => YAML_SYNTAX.test(p.message))
  return { root, template, problems: problems.filter((p) => !YAML_SYNTAX.test(p.message) || p === syntax[0]) }
}

const YAML_SYNTAX =
  /token in YAML stream|at node end|must be sufficiently indented|must start at the same column|Implicit keys|Nested mappings are not allowed|Missing closing/

function positionInMessage(message: string): { line: number; column: number } {
  const m = /\(Line: (\d+), Col: (\d+)\)/.exec(message)
  return m ? { line: Number(m[1]), column: Number(m[2]) } : { line: 1, column: 1 }
}

/** Entries of a mapping token, keys as strings. */
export function entries(
  token: TemplateToken | undefined,
): Array<{ key: string; keyToken: TemplateToken; value: TemplateToken }> {
  if (!token || !isMapping(token)) return []
  const out = []
  for (const pair of token)
    out.push({
      key: String((pair.key as { value?: unknown }).value ?? pair.key.toString()),
      keyToken: pair.key,
      value: pair.value,
    })
  return out
}

/** A literal's JavaScript value (string, number, boolean, null), or undefined for anything else. */
export function literal(token: TemplateToken | undefined): string | number | boolean | null | undefined {
  if (!token) return undefined
  if (isString(token) || isNumber(token) || isBoolean(token)) return token.value
  if (token.templateTokenType === 7 /* null */) return null
  return undefined
}

/** 1-based position of a token. */
export function positionOf(token: TemplateToken | undefined): { line: number; col: number } {
  const start = token?.range?.start
  return start ? { line: start.line, col: start.column } : { line: 1, col: 1 }
}

/**
 * The parser (0.3.61) builds the expression of a block scalar holding `${{ }}` (`run: |` with an
 * expression: most real workflows have one) from the scalar's source text rather than its value:
 * every line keeps its YAML indentation (a python step then fails with "unexpected indent"), `>`
 * does not fold and `|-` keeps its last newline. GitHub's runner uses the value. So each such
 * expression is rebuilt here from the value the `yaml` package gives (the library the parser
 * reads with), keeping the parser's own expressions.
 */
function mendBlockScalars(root: TemplateToken, text: string): void {
  const values = new Map<string, string>()
  const lines = new LineCounter()
  visit(parseDocument(text, { lineCounter: lines }), {
    Scalar(_key, node) {
      if (
        (node.type === 'BLOCK_LITERAL' || node.type === 'BLOCK_FOLDED') &&
        node.range &&
        typeof node.value === 'string'
      ) {
        const at = lines.linePos(node.range[0])
        values.set(`${at.line}:${at.col}`, node.value)
      }
    },
  })
  if (!values.size) return
  const walk = (token: TemplateToken): void => {
    if (isMapping(token)) for (const pair of token) walk(pair.value)
    else if (isSequence(token)) for (const item of token) walk(item)
    else if (isBasicExpression(token) && token.blockScalarHeader !== undefined && token.range) {
      const value = values.get(`${token.range.start.line}:${token.range.start.column}`)
      const originals = token.originalExpressions?.map((e) => e.expression) ?? [token.expression]
      const mended = value === undefined ? null : formatOf(value, originals)
      if (mended !== null) (token as unknown as { expr: string }).expr = mended
    }
  }
  walk(root)
}

/**
 * A string with `${{ }}` in it as the parser writes it: format('literal {0} …', expr0, …), or the
 * expression alone when that is all it holds. Null when the value does not hold exactly the
 * expressions given (then the parser's own stands).
 */
export function formatOf(value: string, expressions: readonly string[]): string | null {
  const literals: string[] = []
  let found = 0
  let i = 0
  for (;;) {
    const open = value.indexOf('${{', i)
    if (open < 0) break
    let close = -1
    let quoted = false
    for (let j = open + 3; j < value.length; j++) {
      if (value[j] === "'") quoted = !quoted
      else if (!quoted && value[j] === '}' && value[j - 1] === '}') {
        close = j
        break
      }
    }
    if (close < 0) return null
    literals.push(value.slice(i, open))
    found++
    i = close + 1
  }
  literals.push(value.slice(i))
  if (found !== expressions.length || !found) return null
  if (found === 1 && literals[0] === '' && literals[1] === '') return expressions[0]!
  const escape = (s: string) => s.replace(/'/g, "''").replace(/\{/g, '{{').replace(/\}/g, '}}')
  const format = literals.map((l, k) => escape(l) + (k < found ? `{${k}}` : '')).join('')
  return `format('${format}'${expressions.map((e) => `, ${e}`).join('')})`
}
