// What `npm test` needs from the system besides npm packages: the test farm lab's daemons and
// tools (dockerd, containerd, runc, sshd, debootstrap, busybox, iptables), git, and Debian's
// Chromium for the end-to-end tests. As root on Debian or Ubuntu they are installed here, saying
// what; otherwise the one command to run is printed and `npm test` stops.
import { spawnSync } from 'node:child_process'
import { existsSync, readFileSync } from 'node:fs'

export const PACKAGES = [
  'docker.io',
  'openssh-server',
  'busybox-static',
  'debootstrap',
  'mmdebstrap',
  'iptables',
  'chromium',
  'git',
  'ca-certificates',
]

function installed(pkg) {
  const r = spawnSync('dpkg-query', ['-W', '-f=${Status}', pkg], { encoding: 'utf8' })
  return r.status === 0 && r.stdout.includes('install ok installed')
}

function debianLike() {
  try {
    const release = readFileSync('/etc/os-release', 'utf8')
    return /^(ID|ID_LIKE)=.*\b(debian|ubuntu)\b/m.test(release)
  } catch {
    return false
  }
}

/** Installs what is missing when it can; returns false (after saying what to do) when it cannot. */
export function ensureSystemPackages() {
  if (!debianLike() || !existsSync('/usr/bin/dpkg-query')) {
    console.error(
      'The test lab needs Debian or Ubuntu (dockerd, sshd, debootstrap, busybox-static, iptables, chromium):\n' +
        `  on Debian or Ubuntu, as root: apt-get install -y ${PACKAGES.join(' ')}`,
    )
    return false
  }
  const missing = PACKAGES.filter((p) => !installed(p))
  if (!missing.length) return true
  const command = `apt-get install -y ${missing.join(' ')}`
  if (process.getuid?.() !== 0) {
    console.error(
      `The test lab needs these Debian packages, which are missing: ${missing.join(' ')}\n  run: sudo ${command}`,
    )
    return false
  }
  console.log(`installing Debian packages the test lab needs: ${missing.join(' ')} (once)`)
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' }
  const apt = (args) =>
    spawnSync('apt-get', args, { stdio: ['ignore', 'ignore', 'inherit'], env }).status === 0
  if (!apt(['update', '-qq']) || !apt(['install', '-y', '-qq', ...missing])) {
    console.error(`could not install them; run by hand: ${command}`)
    return false
  }
  return true
}
