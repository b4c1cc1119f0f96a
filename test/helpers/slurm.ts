// A throwaway single-node SLURM on localhost for tests: munged, slurmctld and slurmd from Debian's
// slurm-wlm and munge, with their sockets, state and logs in a temporary folder and ports of their own, so
// nothing of the machine's (if any) is touched. start() returns null with the reason when it cannot run.
import { spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';

export interface LocalSlurm {
  env: NodeJS.ProcessEnv;
  dir: string;
  stop(): void;
}

const onPath = (program: string): boolean => spawnSync('sh', ['-c', `command -v ${program}`]).status === 0;

function waitFor(check: () => boolean, ms: number): boolean {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (check()) return true;
    spawnSync('sleep', ['0.2']);
  }
  return check();
}

export function startLocalSlurm(): { slurm: LocalSlurm | null; reason: string } {
  const missing = ['munged', 'munge', 'slurmctld', 'slurmd', 'sbatch', 'squeue'].filter((p) => !onPath(p) && !existsSync(`/usr/sbin/${p}`));
  if (missing.length > 0) return { slurm: null, reason: `${missing.join(', ')} not installed (apt-get install slurm-wlm munge)` };
  if (process.getuid?.() !== 0) return { slurm: null, reason: 'starting slurmd needs root' };
  if (!existsSync('/etc/munge/munge.key')) return { slurm: null, reason: 'no /etc/munge/munge.key (reinstall munge)' };
  const dir = mkdtempSync(join(tmpdir(), 'ikun-slurm-'));
  for (const d of ['state', 'spool', 'munge']) mkdirSync(join(dir, d));
  chmodSync(join(dir, 'munge'), 0o700);
  const socket = join(dir, 'munge', 'munge.socket');
  const pids = [join(dir, 'slurmd.pid'), join(dir, 'slurmctld.pid'), join(dir, 'munge', 'munged.pid')];
  const stop = (): void => {
    for (const file of pids) {
      if (!existsSync(file)) continue;
      const pid = Number(readFileSync(file, 'utf8').trim());
      if (Number.isInteger(pid) && pid > 0) {
        try {
          process.kill(pid, 'SIGTERM');
        } catch {
          // already gone
        }
      }
    }
  };
  const munged = spawnSync('munged', ['--force', `--socket=${socket}`, `--pid-file=${pids[2]}`, `--log-file=${join(dir, 'munge', 'munged.log')}`,
    `--seed-file=${join(dir, 'munge', 'seed')}`, '--key-file=/etc/munge/munge.key'], { encoding: 'utf8' });
  if (munged.status !== 0) return { slurm: null, reason: `munged did not start: ${(munged.stderr || munged.stdout).trim()}` };
  const port = 20_000 + (process.pid % 20_000);
  const host = hostname();
  const conf = join(dir, 'slurm.conf');
  writeFileSync(conf, [
    'ClusterName=ikuntest', `SlurmctldHost=${host}(127.0.0.1)`, 'SlurmUser=root', 'SlurmdUser=root', 'AuthType=auth/munge', 'CredType=cred/munge',
    `AuthInfo=socket=${socket}`, `SlurmctldPort=${port}`, `SlurmdPort=${port + 1}`, `StateSaveLocation=${join(dir, 'state')}`, `SlurmdSpoolDir=${join(dir, 'spool')}`,
    `SlurmctldPidFile=${pids[1]}`, `SlurmdPidFile=${pids[0]}`, `SlurmctldLogFile=${join(dir, 'slurmctld.log')}`, `SlurmdLogFile=${join(dir, 'slurmd.log')}`,
    'ProctrackType=proctrack/linuxproc', 'TaskPlugin=task/none', 'SchedulerType=sched/builtin', 'SelectType=select/cons_tres', 'SelectTypeParameters=CR_Core',
    'ReturnToService=2', 'MpiDefault=none', 'JobCompType=jobcomp/none', 'AccountingStorageType=accounting_storage/none', 'JobAcctGatherType=jobacct_gather/none',
    `NodeName=${host} NodeAddr=127.0.0.1 CPUs=2 RealMemory=2000 State=UNKNOWN`, 'PartitionName=debug Nodes=ALL Default=YES MaxTime=INFINITE State=UP', '',
  ].join('\n'));
  const env = { ...process.env, SLURM_CONF: conf };
  for (const daemon of [['slurmctld', '-i'], ['slurmd']]) {
    const r = spawnSync(daemon[0]!, daemon.slice(1), { env, encoding: 'utf8' });
    if (r.status !== 0) {
      stop();
      return { slurm: null, reason: `${daemon[0]} did not start: ${(r.stderr || r.stdout).trim()}` };
    }
  }
  const idle = waitFor(() => /idle/.test(spawnSync('sinfo', ['-h', '-o', '%t'], { env, encoding: 'utf8' }).stdout ?? ''), 20_000);
  if (!idle) {
    stop();
    return { slurm: null, reason: `the local SLURM node never became idle (see ${dir}/slurmctld.log)` };
  }
  return { slurm: { env, dir, stop }, reason: '' };
}
