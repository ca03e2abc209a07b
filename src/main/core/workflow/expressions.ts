/**
 * `${{ }}` expressions, evaluated with GitHub's own evaluator (@actions/expressions) over our
 * contexts, plus the functions that depend on the run: success(), failure(), always(),
 * cancelled(). Values cross in and out as plain JSON.
 */
import { data, Evaluator, Lexer, Parser } from '@actions/expressions'
import type { FunctionDefinition } from '@actions/expressions/funcs/info'
import {
  isBasicExpression,
  isBoolean,
  isMapping,
  isNumber,
  isSequence,
  isString,
  type TemplateToken,
} from './actions-syntax'

export type Json = string | number | boolean | null | Json[] | { [key: string]: Json }

/** The contexts an expression may read (github, env, matrix, needs, steps...). */
export type ExpressionContexts = Record<string, Json>

/**
 * What the status functions answer for the job or step being decided. For a job: success when
 * every needed job succeeded, failure when one failed. For a step: the job's status so far.
 */
export interface RunStatus {
  success: boolean
  failure: boolean
  cancelled: boolean
}

export class ExpressionError extends Error {
  constructor(
    readonly expression: string,
    reason: string,
  ) {
    super(`cannot evaluate \${{ ${expression} }}: ${reason}`)
    this.name = 'ExpressionError'
  }
}

/**
 * Answers of a step's hashFiles() calls, computed on the node beforehand (see hash-files.ts),
 * travel in the contexts under this key, by JSON of their patterns.
 */
export const HASH_FILES_CONTEXT = '__hashFiles'

function statusFunctions(status: RunStatus, hashes: Json | undefined): FunctionDefinition[] {
  const fn = (name: string, value: () => boolean): FunctionDefinition => ({
    name,
    minArgs: 0,
    maxArgs: 0,
    call: () => new data.BooleanData(value()),
  })
  return [
    fn('success', () => status.success && !status.cancelled),
    fn('failure', () => status.failure && !status.cancelled),
    fn('always', () => true),
    fn('cancelled', () => status.cancelled),
    {
      name: 'hashFiles',
      minArgs: 1,
      maxArgs: 255,
      call: (...args) => {
        const key = JSON.stringify(args.map((a) => (a as data.StringData).coerceString()))
        const answer =
          hashes && typeof hashes === 'object' && !Array.isArray(hashes) ? hashes[key] : undefined
        if (typeof answer !== 'string')
          throw new Error('hashFiles() is only available in steps, with literal patterns')
        return new data.StringData(answer)
      },
    },
  ]
}

const NO_STATUS: RunStatus = { success: true, failure: false, cancelled: false }

// The same expressions recur across jobs and matrix instances, and the same contexts across a
// job's expressions: parse each once, convert each contexts object once. (So a contexts object
// must not change after its first use: callers make a new one, as they do per job and step.)
const parsed = new Map<string, ReturnType<Parser['parse']>>()
const dictionaries = new WeakMap<ExpressionContexts, data.Dictionary>()

export function evaluateExpression(
  expression: string,
  contexts: ExpressionContexts,
  status: RunStatus = NO_STATUS,
): Json {
  const functions = statusFunctions(status, contexts[HASH_FILES_CONTEXT])
  try {
    const key = `${Object.keys(contexts).join(',')}|${expression}`
    let tree = parsed.get(key)
    if (!tree) {
      tree = new Parser(lex(expression), Object.keys(contexts), functions).parse()
      if (parsed.size >= 10_000) parsed.clear()
      parsed.set(key, tree)
    }
    let dictionary = dictionaries.get(contexts)
    if (!dictionary) {
      dictionary = JSON.parse(JSON.stringify(contexts), data.reviver) as data.Dictionary
      dictionaries.set(contexts, dictionary)
    }
    const result = new Evaluator(
      tree,
      dictionary,
      new Map(functions.map((f) => [f.name.toLowerCase(), f])),
    ).evaluate()
    return JSON.parse(JSON.stringify(result, data.replacer) ?? 'null') as Json
  } catch (e) {
    throw new ExpressionError(expression, (e as Error).message)
  }
}

/**
 * The expression's tokens. @actions/expressions 0.3.61 unescapes only the first `''` of a string
 * literal (`value.replace("''", "'")`), so `'a''b''c'` came out as `a'b''c`; GitHub's runner
 * unescapes them all. GitHub's parser writes every `run:` with an expression as such a literal
 * (`format('echo ''{0}''', …)`), so a quoted expression in a script broke the script's quoting.
 * String tokens are read again from their lexeme here.
 */
function lex(expression: string): ReturnType<Lexer['lex']>['tokens'] {
  return new Lexer(expression)
    .lex()
    .tokens.map((t) =>
      typeof t.value === 'string' &&
      t.lexeme.length >= 2 &&
      t.lexeme.startsWith("'") &&
      t.lexeme.endsWith("'")
        ? { ...t, value: t.lexeme.slice(1, -1).replaceAll("''", "'") }
        : t,
    )
}

/** A token with its expressions evaluated: mappings become objects, sequences arrays. */
export function evaluateToken(
  token: TemplateToken | undefined | null,
  contexts: ExpressionContexts,
  status?: RunStatus,
): Json {
  if (!token) return null
  if (isBasicExpression(token)) return evaluateExpression(token.expression, contexts, status)
  if (isString(token) || isNumber(token) || isBoolean(token)) return token.value
  if (isSequence(token)) return [...token].map((t) => evaluateToken(t, contexts, status))
  if (isMapping(token)) {
    const out: Record<string, Json> = {}
    for (const pair of token)
      out[toText(evaluateToken(pair.key, contexts, status))] = evaluateToken(pair.value, contexts, status)
    return out
  }
  return null
}

/** As GitHub converts a value to a string: null is empty, objects are JSON. */
export function toText(value: Json): string {
  if (value === null) return ''
  if (typeof value === 'string') return value
  if (typeof value === 'number' || typeof value === 'boolean') return String(value)
  return JSON.stringify(value, null, 2)
}

export function evaluateText(token: TemplateToken | undefined | null, contexts: ExpressionContexts): string {
  return toText(evaluateToken(token, contexts))
}

/** GitHub's truthiness: false, 0, "", null (and NaN) are false; everything else is true. */
export function truthy(value: Json): boolean {
  if (value === null || value === false || value === '') return false
  if (typeof value === 'number') return value !== 0 && !Number.isNaN(value)
  return true
}

/** A mapping of names to strings (`env:`), evaluated. */
export function evaluateEnv(
  token: TemplateToken | undefined | null,
  contexts: ExpressionContexts,
): Record<string, string> {
  const value = evaluateToken(token, contexts)
  const out: Record<string, string> = {}
  if (value && typeof value === 'object' && !Array.isArray(value)) {
    for (const [k, v] of Object.entries(value)) out[k] = toText(v)
  }
  return out
}
