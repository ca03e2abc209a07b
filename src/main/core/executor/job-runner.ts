/**
 * Runs one job instance (a job, or one combination of its matrix) on its node: a fresh
 * environment, then each step whose `if` holds, with file commands read back after each step,
 * workflow commands and masks applied to every line, and GitHub's outcome and conclusion per
 * step. Timeouts (job and step) end the work as failures; cancellation as cancelled.
 */
import type { ReproRecipe, StepState } from '../../../shared/model'
import { describeNode, isLocal, type FarmNode } from '../farm/farm-model'
import type { RunStore } from '../store/run-store'
import {
  evaluateEnv,
  evaluateExpression,
  evaluateText,
  evaluateToken,
  HASH_FILES_CONTEXT,
  truthy,
  type ExpressionContexts,
  type Json,
  type RunStatus,
} from '../workflow/expressions'
import {
  collectScript,
  EpilogueSplitter,
  FILE_COMMAND_VARS,
  FILE_COMMANDS,
  parseKeyValueFile,
  refusedEnvName,
  splitCollected,
} from '../workflow/file-commands'
import { randomBytes } from 'node:crypto'
import { StringDecoder } from 'node:string_decoder'
import { WorkflowCommands } from '../workflow/workflow-commands'
import type { Workflow, WorkflowJob, WorkflowStep } from '../workflow/workflow-model'
import { shellQuote, type JobEnvironment, type NodeExecutor, type StepCommand } from './job-environment'
import { combineDigests, findHashFilesCalls, hashFilesKey, matchFiles } from '../workflow/hash-files'
import { NO_NEEDS, type ResourceNeeds } from '../workflow/container-options'
import { containerOf, servicesOf, type JobContainer } from '../workflow/plan'
import type { LogSink, LogTarget } from './log-sink'
import { runnerArch, runnerOs } from './run-contexts'
import { infrastructureReason, NodeCallError } from './job-failures'
import { fenceLeftovers } from './fencing'
import { parseCheckpoint, type JobCheckpoint } from './job-checkpoint'
import type { JobOutcome } from '../farm/node-admin'

/** GitHub's default job timeout. */
export const DEFAULT_JOB_TIMEOUT_MINUTES = 360

export interface JobInstanceSpec {
  workflow: Workflow
  job: WorkflowJob
  /** The row's key: the job key, or `key (a, b)` for a matrix instance. */
  key: string
  jobId: number
  stepIds: number[]
  /** Contexts the job starts with: github, inputs, vars, secrets, needs, matrix, strategy. */
  contexts: ExpressionContexts
  secrets: string[]
  /** The image of a platform label in runs-on (ubuntu-latest=...), used when the job has no container. */
  platformImage?: string | null
  /** --cpus/--memory/--gpus from container.options, applied as container limits. */
  resources?: ResourceNeeds
  instance: string
  runId: number
  /** The attempt this is (1 first): its lines say so. */
  attempt: number
  /** The orchestrator holding it (its slot claims' holder): labelled on what it makes on the node. */
  holder?: string
  /** A stopped step's processes get SIGTERM, then SIGKILL this long after. @default 0 */
  graceMs?: number
  /**
   * This attempt was started by an orchestrator that died: take over its container (ref) instead
   * of making one, and go on from the last step the history shows started (`step`, null when
   * none): that step's record on the node says where the job stood and what became of the step.
   */
  takeOver?: { ref: string | null; step: number | null }
}

export interface JobInstanceDeps {
  store: RunStore
  logs: LogSink
  node: FarmNode
  executor: NodeExecutor
  /** Aborted when the run is cancelled, or fail-fast cancels sibling instances. */
  signal: AbortSignal
  /** Told when the job starts on its node (its end is the result: the caller records it, or retries). */
  started(patch: { nodeName: string; image?: string | null; startedAt: number }): void
  stepChanged(stepIndex: number, name: string, state: StepState, exitCode: number | null): void
  /** What the attempt made on its node (JobEnvironment.ref), once it exists. */
  placed?(ref: string): void
  /** Its removal failed (the node did not answer): it must be fenced before the node takes new work. */
  leftBehind?(): void
  /** What was left behind was removed after all. */
  cleared?(): void
}

export interface JobInstanceResult {
  state: 'succeeded' | 'failed' | 'cancelled'
  /** What to record of the end: reason (masked), exit code, when. */
  end: { reason: string | null; exitCode: number | null; finishedAt: number }
  outputs: Record<string, string>
  /** How to run the failing step by hand, when the job failed for its own reasons. */
  repro: ReproRecipe | null
  /**
   * The job failed because its node failed it (the first failing step could not run for the
   * node's sake, or the job could not start there): worth another attempt, elsewhere.
   */
  retryable: boolean
  /**
   * A step was cut off from its node while it ran (the connection dropped): what became of it
   * there is unknown, so the attempt is lost rather than failed (and fenced if it may still run).
   */
  lost?: boolean
  /** What the job says of its node (counted towards quarantine); null when it never got to use it. */
  nodeOutcome: JobOutcome | null
}

export async function runJobInstance(
  spec: JobInstanceSpec,
  deps: JobInstanceDeps,
): Promise<JobInstanceResult> {
  // Masks (the run's secrets, and what steps add with ::add-mask::) hold for every line of the
  // job, Yardmaster's own included, and for the reasons recorded.
  const commands = new WorkflowCommands(spec.secrets)
  deps.logs.setFilter(spec.jobId, commands)
  try {
    const r = await runInstance(spec, deps, commands)
    return {
      ...r,
      end: { ...r.end, reason: r.end.reason && commands.mask(r.end.reason) },
      repro: r.repro && {
        ...r.repro,
        script: commands.mask(r.repro.script),
        workingDirectory: r.repro.workingDirectory && commands.mask(r.repro.workingDirectory),
      },
    }
  } finally {
    deps.logs.setFilter(spec.jobId, null)
  }
}

async function runInstance(
  spec: JobInstanceSpec,
  deps: JobInstanceDeps,
  commands: WorkflowCommands,
): Promise<JobInstanceResult> {
  const { workflow, job, jobId, stepIds } = spec
  const { store, logs, node } = deps
  const jobTarget: LogTarget = {
    runId: spec.runId,
    jobId,
    jobKey: spec.key,
    stepIndex: null,
    attempt: spec.attempt,
  }
  const fail = (reason: string, nodeOutcome: JobOutcome | null): JobInstanceResult => {
    logs.line(jobTarget, 'system', reason)
    for (const id of stepIds) store.updateStep(id, { state: 'skipped', conclusion: 'skipped' })
    return {
      state: 'failed',
      end: ended(reason),
      outputs: {},
      repro: null,
      retryable: nodeOutcome?.kind === 'infrastructure',
      nodeOutcome,
    }
  }

  const github = { ...(spec.contexts.github as Record<string, Json>), job: job.key }
  const runner = { os: runnerOs(), arch: runnerArch(), name: node.name, temp: '', tool_cache: '' }
  let contexts: ExpressionContexts = { ...spec.contexts, github, runner, env: {} }
  let env: Record<string, string>
  let image: string | null = null
  let container: JobContainer | null = null
  let timeoutMinutes = DEFAULT_JOB_TIMEOUT_MINUTES
  try {
    const workflowEnv = evaluateEnv(workflow.env, contexts)
    env = { ...workflowEnv, ...evaluateEnv(job.env, { ...contexts, env: workflowEnv }) }
    contexts = { ...contexts, env }
    if (node.executor === 'docker') {
      container = containerOf(job, contexts)
      image = container.image ?? spec.platformImage ?? node.defaultImage
    }
    if (job.timeoutMinutes)
      timeoutMinutes = minutes(evaluateToken(job.timeoutMinutes, contexts), 'timeout-minutes')
  } catch (e) {
    deps.started({ nodeName: node.name, startedAt: Date.now() })
    return fail(`could not evaluate the job: ${(e as Error).message}`, null)
  }
  deps.started({ nodeName: node.name, image, startedAt: Date.now() })
  logs.line(
    jobTarget,
    'system',
    `job ${spec.key} on node ${describeNode(node)}${image ? ` in image ${image}` : ''}` +
      (spec.attempt > 1 ? `, attempt ${spec.attempt}` : ''),
  )

  // Every step's environment, lowest first: the job's (CI may be overwritten, as on GitHub), then
  // what steps add ($GITHUB_ENV) and the step's own; the runner's GITHUB_* and RUNNER_* last,
  // since nothing may overwrite them.
  // (The job's env over its container's: on GitHub the container gets its env when created and
  // every step gets the job's, which wins.)
  const jobEnv = { CI: 'true', YARDMASTER: 'true', ...container?.env, ...env }
  const runnerEnv = {
    GITHUB_ACTIONS: 'true',
    ...githubEnv(github),
    RUNNER_OS: runner.os,
    RUNNER_ARCH: runner.arch,
    RUNNER_NAME: node.name,
  }

  // Taking over a dead orchestrator's attempt: its container, and where the job stood.
  let taken: TakenOver | null = null
  if (spec.takeOver) {
    try {
      taken = await takeOver(spec, deps)
    } catch (e) {
      taken = null
      logs.line(jobTarget, 'system', `could not take the job over on ${node.name}: ${(e as Error).message}`)
    }
    if (!taken) {
      // Gone, or unreadable: what is left there is fenced, and the job runs again.
      deps.leftBehind?.()
      const reason = `the orchestrator that ran it stopped, and what it ran on ${node.name} could not be taken over`
      logs.line(jobTarget, 'system', reason)
      for (const id of stepIds) store.updateStep(id, { state: 'skipped', conclusion: 'skipped' })
      return {
        state: 'failed',
        end: ended(reason),
        outputs: {},
        repro: null,
        retryable: true,
        lost: true,
        nodeOutcome: null,
      }
    }
    logs.line(
      jobTarget,
      'system',
      `taken over from the orchestrator that ran it, which stopped: ` +
        (taken.checkpoint
          ? `following step ${taken.checkpoint.step + 1} "${job.steps[taken.checkpoint.step]?.name ?? '?'}" from its record`
          : 'no step had started; starting with the first'),
    )
  }

  const jobStartedAt = taken?.checkpoint?.startedAt ?? Date.now()
  const timeout = AbortSignal.timeout(Math.max(1, timeoutMinutes * 60_000 - (Date.now() - jobStartedAt)))
  const signal = AbortSignal.any([deps.signal, timeout])
  const timedOut = () => timeout.aborted && !deps.signal.aborted

  let environment: JobEnvironment
  try {
    environment = taken ? taken.environment : await prepareFresh()
  } catch (e) {
    if (signal.aborted && !timedOut()) {
      for (const id of stepIds) store.updateStep(id, { state: 'cancelled', conclusion: 'cancelled' })
      return {
        state: 'cancelled',
        end: ended(cancelReason(deps.signal)),
        outputs: {},
        repro: null,
        retryable: false,
        nodeOutcome: null,
      }
    }
    const reason = `could not start the job on ${node.name}: ${(e as Error).message}`
    const infrastructure = infrastructureReason(e)
    return fail(
      reason,
      infrastructure
        ? { kind: 'infrastructure', at: Date.now(), reason: `could not start a job: ${infrastructure}` }
        : { kind: 'worked', at: Date.now() },
    )
  }

  deps.placed?.(environment.ref)

  // Where the job stands: from the start, or as the checkpoint of the step taken over says.
  const at = taken?.checkpoint ?? null
  const steps: Record<string, Json> = { ...at?.steps }
  // What each step ran, for a failure's reproduction recipe (names of its env only: values may be secrets).
  const ran = new Map<number, Pick<ReproRecipe, 'shell' | 'workingDirectory' | 'env' | 'script'>>()
  const addedEnv: Record<string, string> = { ...at?.addedEnv }
  const addedPath: string[] = [...(at?.addedPath ?? [])]
  let jobFailed = at?.jobFailed ?? false
  let cancelled = at?.cancelled ?? false
  let failure: { step: WorkflowStep; code: number | null; why: string; nodes: boolean } | null = at?.failure
    ? { ...at.failure, step: job.steps[at.failure.step]! }
    : null
  // The job container's image id, read when a step fails (before the container goes): for the recipe.
  let failedImageId: string | null = at?.failedImageId ?? null
  for (const m of at?.masks ?? []) {
    commands.added.push(m)
    commands.addMask(m)
  }
  // The first step that could not run for the node's sake (the connection dropped mid-job).
  let nodeFault: string | null = null
  let nodeFaultStep: number | null = null
  const cmdRoot = `${environment.temp}/_runner_file_commands`
  try {
    for (const step of job.steps) {
      // Steps before the one taken over are done, and recorded so.
      if (at && step.index < at.step) continue
      const stepId = stepIds[step.index]!
      const target: LogTarget = { ...jobTarget, stepIndex: step.index }
      const stepContexts: ExpressionContexts = {
        ...contexts,
        env: { ...env, ...addedEnv },
        steps,
        job: { status: jobFailed ? 'failure' : signal.aborted ? 'cancelled' : 'success' },
        runner: { ...runner, temp: environment.temp },
        github: { ...github, workspace: environment.workspace },
      }
      // Cut off from the node: nothing more can run there (not even `always()` steps), and
      // waiting for each to time out would only delay the retry.
      if (nodeFault !== null) {
        store.updateStep(stepId, { state: 'skipped', conclusion: 'skipped' })
        steps[step.contextKey] = { outputs: {}, outcome: 'skipped', conclusion: 'skipped' }
        continue
      }
      const hashes = await hashFilesFor(step, environment, signal)
      if (hashes) stepContexts[HASH_FILES_CONTEXT] = hashes
      const status: RunStatus = { success: !jobFailed, failure: jobFailed, cancelled: signal.aborted }
      let outcome: 'success' | 'failure' | 'cancelled' | 'skipped'
      let code: number | null = null
      let stepOutputs: Record<string, string> = {}
      let continueOnError = false
      let stepTimedOut: string | null = null
      let stepThrew = false
      try {
        if (!truthy(evaluateExpression(step.if, stepContexts, status)))
          outcome = signal.aborted ? 'cancelled' : 'skipped'
        else {
          continueOnError = truthy(evaluateToken(step.continueOnError, stepContexts))
          const r = await runStep(step, stepContexts, target, stepId)
          code = r.code
          stepOutputs = r.outputs
          stepTimedOut = r.timedOutAfter
          // No exit code: cancelled when we stopped it; killed (a signal, the OOM killer) otherwise.
          outcome =
            code === 0
              ? 'success'
              : code === null && r.timedOutAfter === null && signal.aborted
                ? 'cancelled'
                : 'failure'
        }
      } catch (e) {
        stepThrew = true
        logs.line(target, 'system', `the step could not run: ${(e as Error).message}`)
        outcome = signal.aborted && !timedOut() ? 'cancelled' : 'failure'
        code = null
        // Only what the node did counts against it; an expression that fails is the job's.
        const infrastructure =
          outcome === 'failure' && e instanceof NodeCallError ? infrastructureReason(e.cause) : null
        if (infrastructure && nodeFault === null) {
          nodeFault = `step ${step.index + 1} "${step.name}" could not run: ${infrastructure}`
          nodeFaultStep = step.index
        }
      }
      logs.endStep(target)
      const conclusion = outcome === 'failure' && continueOnError ? 'success' : outcome
      steps[step.contextKey] = { outputs: stepOutputs, outcome, conclusion }
      const state: StepState =
        outcome === 'success'
          ? 'succeeded'
          : outcome === 'failure'
            ? 'failed'
            : outcome === 'cancelled'
              ? 'cancelled'
              : 'skipped'
      store.updateStep(stepId, { state, exitCode: code, conclusion, finishedAt: Date.now() })
      if (outcome !== 'skipped') deps.stepChanged(step.index, step.name, state, code)
      if (outcome === 'cancelled') cancelled = true
      if (conclusion === 'failure') {
        jobFailed = true
        // Only the job's own failure gets a recipe: do not ask a node that just failed us.
        if (!failure && nodeFaultStep !== step.index) failedImageId = (await environment.imageId?.()) ?? null
        failure ??= {
          step,
          nodes: nodeFaultStep === step.index,
          code,
          why: timedOut()
            ? `was stopped: the job timed out after ${timeoutText(timeoutMinutes)}`
            : stepTimedOut
              ? `timed out after ${stepTimedOut}`
              : code === null
                ? !stepThrew
                  ? 'was killed (no exit code)'
                  : 'could not run'
                : `exited with code ${code}`,
        }
      }
    }
    contexts = { ...contexts, steps, env: { ...env, ...addedEnv } }
  } finally {
    if (nodeFault !== null) {
      // The attempt is lost now, not once a removal on a node that may not answer gives up:
      // marked for fencing, and removed in the background when the node does answer.
      deps.leftBehind?.()
      const env = environment
      void env
        .dispose()
        .then((gone) => gone && deps.cleared?.())
        .catch(() => {}) // the history closed meanwhile: the fence mark stays, which is safe
    } else if (!(await environment.dispose())) deps.leftBehind?.()
  }

  let outputs: Record<string, string> = {}
  try {
    outputs = withoutSecrets(evaluateEnv(job.outputs, contexts), commands, (name) =>
      logs.line(jobTarget, 'system', `Warning: Skip output '${name}' since it may contain secret.`),
    )
  } catch (e) {
    logs.line(jobTarget, 'system', `could not evaluate the job's outputs: ${(e as Error).message}`)
    jobFailed = true
  }
  const now = Date.now()
  const nodeOutcome: JobOutcome = nodeFault
    ? { kind: 'infrastructure', at: now, reason: nodeFault }
    : { kind: 'worked', at: now }
  if (timedOut() && !failure) {
    const reason = `the job timed out after ${timeoutText(timeoutMinutes)}`
    return {
      state: 'failed',
      end: ended(reason, null, now),
      outputs,
      repro: null,
      retryable: false,
      nodeOutcome,
    }
  }
  if (cancelled && !jobFailed) {
    const end = ended(cancelReason(deps.signal), null, now)
    return {
      state: 'cancelled',
      end,
      outputs,
      repro: null,
      retryable: false,
      nodeOutcome: nodeFault ? nodeOutcome : null,
    }
  }
  if (jobFailed) {
    const reason = failure
      ? `step ${failure.step.index + 1} "${failure.step.name}" ${failure.why}`
      : 'the job failed'
    // The job's own failure (not its node's): say how to try the step again by hand.
    const repro =
      failure && !failure.nodes && ran.get(failure.step.index)
        ? {
            ...ran.get(failure.step.index)!,
            node: node.name,
            address: isLocal(node) ? null : `${node.user}@${node.host}:${node.port}`,
            image,
            imageId: failedImageId,
            step: { index: failure.step.index, name: failure.step.name },
          }
        : null
    return {
      state: 'failed',
      end: ended(reason, failure?.code ?? null, now),
      outputs,
      repro,
      retryable: failure?.nodes ?? false,
      lost: failure?.nodes ?? false,
      nodeOutcome,
    }
  }
  return { state: 'succeeded', end: ended(null, 0, now), outputs, repro: null, retryable: false, nodeOutcome }

  /** A fresh environment on the node, once what dead attempts left there is fenced. */
  async function prepareFresh(): Promise<JobEnvironment> {
    await fenceLeftovers(store, node.name, deps.executor, signal, (m) => logs.line(jobTarget, 'system', m))
    return deps.executor.prepare(
      {
        instance: spec.instance,
        runId: spec.runId,
        jobKey: spec.key,
        attempt: spec.attempt,
        holder: spec.holder,
        image,
        resources: spec.resources ?? NO_NEEDS,
        volumes: container?.volumes ?? [],
        services: node.executor === 'docker' ? servicesOf(job, contexts) : [],
        credentials: container?.credentials ?? null,
        graceMs: spec.graceMs ?? 0,
      },
      (m) => logs.line(jobTarget, 'system', m),
      signal,
    )
  }

  async function runStep(
    step: WorkflowStep,
    ctx: ExpressionContexts,
    target: LogTarget,
    stepId: number,
  ): Promise<{
    code: number | null
    outputs: Record<string, string>
    /** "5 min (timeout-minutes)" when the step's or the job's limit stopped it. */
    timedOutAfter: string | null
  }> {
    // The step taken over: its record says what became of it (it may never have started).
    const following = at !== null && step.index === at.step
    if (!following) store.updateStep(stepId, { state: 'running', startedAt: Date.now() })
    deps.stepChanged(step.index, step.name, 'running', null)
    if (step.uses !== null) {
      logs.line(
        target,
        'system',
        `${step.uses}: built-in actions arrive with the artifacts and cache work; this step cannot run yet`,
      )
      return { code: 1, outputs: {}, timedOutAfter: null }
    }
    // Fresh for every step: its file-command folder (so no earlier step can know it and plant
    // outputs or env there, as GitHub's file names are random too), the marker that ends the
    // step's own output, and the separators that frame each file when read back.
    const nonce = following ? at.nonce : randomBytes(12).toString('hex')
    const dir = `${cmdRoot}/${nonce}`
    const fileEnv = Object.fromEntries(FILE_COMMANDS.map((f) => [FILE_COMMAND_VARS[f], `${dir}/${f}`]))
    const stepEnv = evaluateEnv(step.env, ctx)
    const wd = step.workingDirectory
      ? evaluateText(step.workingDirectory, ctx)
      : (job.defaults.workingDirectory ?? workflow.defaults.workingDirectory)
    const stepMinutes = step.timeoutMinutes
      ? minutes(evaluateToken(step.timeoutMinutes, ctx), 'timeout-minutes')
      : null
    const stepTimeout = stepMinutes === null ? null : AbortSignal.timeout(stepMinutes * 60_000)
    const stepSignal = stepTimeout ? AbortSignal.any([signal, stepTimeout]) : signal
    const marker = `@@ym-files-${nonce}@@`
    const splitter = new EpilogueSplitter(marker)
    const decoder = new StringDecoder('utf8')
    const command: StepCommand = {
      script: evaluateText(step.run, ctx),
      shell: step.shell ?? job.defaults.shell ?? workflow.defaults.shell,
      env: {
        ...jobEnv,
        ...addedEnv,
        ...stepEnv,
        ...runnerEnv,
        ...fileEnv,
        RUNNER_TEMP: environment.temp,
        GITHUB_WORKSPACE: environment.workspace,
      },
      workingDirectory: wd,
      pathPrepend: [...addedPath],
      // Made in the step's own process: no extra round trip.
      prelude: `mkdir -p "${dir}" && for f in ${FILE_COMMANDS.join(' ')}; do : > "${dir}/$f"; done`,
      ...(environment.records && {
        record: `${environment.records}/${step.index}`,
        checkpoint: JSON.stringify({
          v: 1,
          step: step.index,
          nonce,
          startedAt: jobStartedAt,
          steps,
          addedEnv,
          addedPath,
          jobFailed,
          cancelled,
          failure: failure && { ...failure, step: failure.step.index },
          failedImageId,
          masks: commands.added,
        } satisfies JobCheckpoint),
      }),
      epilogue: `printf %s ${marker}; ${collectScript(dir, nonce)}`,
    }
    ran.set(step.index, {
      shell: command.shell ?? 'bash',
      workingDirectory: command.workingDirectory,
      env: Object.keys(command.env).sort(),
      script: command.script,
    })
    const sink = (stream: 'stdout' | 'stderr', chunk: Buffer) => {
      if (stream === 'stderr') return logs.write(target, stream, chunk)
      // The step's file commands come back on stdout after the marker, in the same process.
      const own = splitter.feed(decoder.write(chunk))
      if (own) logs.write(target, stream, Buffer.from(own))
    }
    const code = await (async () => {
      if (following && command.record && environment.resumeStep) {
        // Its output comes again from the start: what the history has of it is not stored twice.
        const where = { runId: spec.runId, jobId, attempt: spec.attempt, stepIndex: step.index }
        logs.skipStored(target, 'stdout', store.storedLines(where, 'stdout'))
        logs.skipStored(target, 'stderr', store.storedLines(where, 'stderr'))
        const followed = await environment.resumeStep(command.record, sink, stepSignal)
        if (followed !== 'not-started') return followed
        store.updateStep(stepId, { state: 'running', startedAt: Date.now() })
      }
      return environment.runStep(command, sink, stepSignal)
    })().catch((e: unknown) => {
      throw new NodeCallError(e)
    })
    const { rest, epilogue } = splitter.end()
    const last = rest + decoder.end()
    if (last) logs.write(target, 'stdout', Buffer.from(last))
    logs.endStep(target)
    const stepTimedOut = (stepTimeout?.aborted ?? false) && !signal.aborted
    if (stepTimedOut) logs.line(target, 'system', `the step timed out after ${timeoutText(stepMinutes!)}`)
    if (code === null) {
      const after = stepTimedOut ? timeoutText(stepMinutes!) : timedOut() ? timeoutText(timeoutMinutes) : null
      return { code, outputs: {}, timedOutAfter: after }
    }
    // What the step wrote to its file commands (none when the shell could not even start).
    const files = splitCollected(epilogue ?? '', nonce)
    for (const [name, value] of Object.entries(parseKeyValueFile(files.env, '$GITHUB_ENV'))) {
      const refused = refusedEnvName(name)
      if (refused) logs.line(target, 'system', `Error: ${refused}`)
      else addedEnv[name] = value
    }
    for (const p of files.path
      .split('\n')
      .map((l) => l.trim())
      .filter(Boolean)
      .reverse())
      addedPath.unshift(p)
    for (const line of files.summary.split('\n').filter(Boolean))
      logs.line(target, 'system', `summary: ${commands.mask(line)}`)
    return { code, outputs: parseKeyValueFile(files.output, '$GITHUB_OUTPUT'), timedOutAfter: null }
  }
}

interface TakenOver {
  environment: JobEnvironment
  /** The checkpoint of the last step that got one (that step is followed); null: none started. */
  checkpoint: JobCheckpoint | null
}

/**
 * Takes over a dead orchestrator's attempt: its container, and the checkpoint of the last step
 * with a record (the history's last started step, or one before it when that one died before its
 * record was made). Null when the container is gone or no longer runs.
 */
async function takeOver(spec: JobInstanceSpec, deps: JobInstanceDeps): Promise<TakenOver | null> {
  const { ref, step } = spec.takeOver!
  const leftover = {
    instance: spec.instance,
    runId: spec.runId,
    jobKey: spec.key,
    attempt: spec.attempt,
    ref,
  }
  const environment = await deps.executor.adopt?.(leftover, spec.graceMs ?? 0, deps.signal)
  if (!environment) return null
  if (!environment.records || !environment.readFile) return null
  for (let i = step ?? -1; i >= 0; i--) {
    const text = await environment.readFile(`${environment.records}/${i}/state.json`, deps.signal)
    if (text !== null) return { environment, checkpoint: parseCheckpoint(text) }
  }
  return { environment, checkpoint: null }
}

/**
 * The answers to a step's hashFiles() calls, computed in its environment: one `find` for the
 * workspace's files, one `sha256sum` for those the patterns match. Null when the step has none.
 */
async function hashFilesFor(
  step: WorkflowStep,
  environment: JobEnvironment,
  signal: AbortSignal,
): Promise<Record<string, string> | null> {
  const text = JSON.stringify([step.if, step.run, step.env, step.with, step.nameToken, step.workingDirectory])
  const calls = findHashFilesCalls(text)
  if (!calls.length) return null
  const run = async (script: string) => {
    let out = ''
    let err = ''
    const code = await environment.runStep(
      { script, shell: 'sh', env: {}, workingDirectory: null },
      (stream, chunk) =>
        stream === 'stdout' ? (out += chunk.toString('utf8')) : (err += chunk.toString('utf8')),
      signal,
    )
    if (code !== 0)
      throw new Error(
        `hashFiles(): "${script.slice(0, 60)}" failed on the node: ${err.trim() || `exit ${code}`}`,
      )
    return out
  }
  const files = (await run("find . -type f ! -path './.git/*' 2>/dev/null")).split('\n').filter(Boolean)
  const answers: Record<string, string> = {}
  for (const patterns of calls) {
    const matched = matchFiles(files, patterns)
    let digests: string[] = []
    if (matched.length) {
      const out = await run(`sha256sum -- ${matched.map((f) => shellQuote(f)).join(' ')}`)
      const byFile = new Map(
        out
          .split('\n')
          .filter(Boolean)
          .map((l) => [l.slice(66).replace(/^\*/, ''), l.slice(0, 64)]),
      )
      digests = matched.map((f) => byFile.get(f) ?? '')
    }
    answers[hashFilesKey(patterns)] = combineDigests(digests)
  }
  return answers
}

/**
 * Job outputs travel to other jobs and into the history: one whose value holds a secret or a
 * masked value is dropped, with a warning, as GitHub does.
 */
function withoutSecrets(
  outputs: Record<string, string>,
  masks: WorkflowCommands,
  warn: (name: string) => void,
): Record<string, string> {
  const kept: Record<string, string> = {}
  for (const [name, value] of Object.entries(outputs)) {
    if (masks.mask(value) !== value) warn(name)
    else kept[name] = value
  }
  return kept
}

function cancelReason(signal: AbortSignal): string {
  return signal.reason instanceof RunCancel ? signal.reason.message : 'the run was cancelled'
}

/** Why a run or job was cancelled, when it was not the user: its message is shown and stored. */
export class RunCancel extends Error {
  override name = 'RunCancel'
}

/** Why fail-fast cancelled an instance: a sibling failed. */
export class FailFastCancel extends RunCancel {
  constructor(sibling: string) {
    super(`cancelled by fail-fast: ${sibling} failed`)
    this.name = 'FailFastCancel'
  }
}

function minutes(value: Json, what: string): number {
  const n = typeof value === 'number' ? value : Number(value)
  if (!Number.isFinite(n) || n <= 0)
    throw new Error(`${what} must be a positive number of minutes, not ${JSON.stringify(value)}`)
  return n
}

/** GITHUB_* variables from the github context, as the runner sets them. */
function githubEnv(github: Record<string, Json>): Record<string, string> {
  const out: Record<string, string> = {}
  for (const [k, v] of Object.entries(github)) {
    if (k === 'event' || k === 'token' || (typeof v === 'object' && v !== null)) continue
    out[`GITHUB_${k.toUpperCase()}`] = v === null ? '' : String(v)
  }
  return out
}

function ended(reason: string | null, exitCode: number | null = null, finishedAt = Date.now()) {
  return { reason, exitCode, finishedAt }
}

/** "5 min (timeout-minutes)", "1.2 s (timeout-minutes)": a limit as the record says it. */
export function timeoutText(minutes: number): string {
  const amount = minutes >= 1 ? `${+minutes.toFixed(2)} min` : `${+(minutes * 60).toFixed(1)} s`
  return `${amount} (timeout-minutes)`
}
