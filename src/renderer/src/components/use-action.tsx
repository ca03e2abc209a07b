import { useState } from 'react'

export interface ActionState<T> {
  busy: boolean
  result: T | null
  /** The call's error, in the backend's words. */
  error: string | null
}

/**
 * One backend call a button makes: busy while it runs, then its result or its error, kept
 * beside the button. Components keyed by node start over when another node is selected.
 */
export function useAction<A extends unknown[], T>(call: (...args: A) => Promise<T>) {
  const [state, setState] = useState<ActionState<T>>({ busy: false, result: null, error: null })
  const run = async (...args: A): Promise<T | null> => {
    setState({ busy: true, result: null, error: null })
    try {
      const result = await call(...args)
      setState({ busy: false, result, error: null })
      return result
    } catch (e) {
      setState({ busy: false, result: null, error: (e as Error).message })
      return null
    }
  }
  const reset = () => setState({ busy: false, result: null, error: null })
  return { ...state, run, reset }
}

/** An action's error, next to it, in words. */
export function ActionError({ error }: { error: string | null }) {
  if (!error) return null
  return (
    <p className="action-error" role="alert">
      {error}
    </p>
  )
}
