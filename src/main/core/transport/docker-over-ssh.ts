/**
 * Docker API over an existing SSH connection: every HTTP connection of dockerode is an exec
 * channel running `docker system dial-stdio` on the node, multiplexed on one SSH connection, so
 * a request costs a channel, not a handshake (dockerode's own ssh protocol opens a new SSH
 * connection per HTTP connection). Keep-alive reuses channels across requests.
 */
import { Agent } from 'node:http'
import { inspect } from 'node:util'
import type { Duplex } from 'node:stream'
import Docker from 'dockerode'
import type { Client, ClientChannel } from 'ssh2'

class DialStdioAgent extends Agent {
  // docker-modem util.inspect()s each request's options, agent included; without this it walks
  // the whole ssh2 client every request (about 2 ms each).
  [inspect.custom](): string {
    return 'DialStdioAgent'
  }

  constructor(private readonly ssh: Client) {
    // Each HTTP connection is a session; the pool counts them against sshd's MaxSessions per SSH
    // connection and opens more connections when one is full (ssh-pool), so the limit here is
    // only a ceiling: up to 4 connections of 10 sessions each, less some for commands.
    super({ keepAlive: true, maxSockets: 32, maxFreeSockets: 4 })
  }

  override createConnection(
    _options: unknown,
    callback?: (err: Error | null, socket: Duplex) => void,
  ): Duplex | null {
    this.ssh.exec('docker system dial-stdio', (err, channel: ClientChannel) => {
      if (err) return callback?.(err, undefined as never)
      let stderr = ''
      channel.stderr.on('data', (d: Buffer) => (stderr = (stderr + d.toString()).slice(-2000)))
      channel.on('exit', (code: number | null) => {
        if (code)
          channel.emit(
            'error',
            new Error(`docker system dial-stdio exited ${code}: ${stderr.trim() || 'no output'}`),
          )
      })
      // http.ClientRequest calls these on real sockets; an SSH channel has nothing to set.
      const socket = channel as unknown as Duplex & Record<string, unknown>
      socket.setKeepAlive = () => socket
      socket.setNoDelay = () => socket
      socket.setTimeout = () => socket
      socket.ref = () => socket
      socket.unref = () => socket
      callback?.(null, socket)
    })
    return null
  }
}

export function dockerOverSsh(ssh: Client): Docker {
  // host/port are placeholders: the agent decides where bytes go.
  return new Docker({
    protocol: 'http',
    host: 'docker',
    port: 2375,
    agent: new DialStdioAgent(ssh),
  } as Docker.DockerOptions)
}

export function localDocker(
  socketPath = process.env.DOCKER_HOST?.replace(/^unix:\/\//, '') || '/var/run/docker.sock',
): Docker {
  return new Docker({ socketPath })
}
