/** What MASTER logs, answers the refused CONTROL and shows in `discluster status`. */
export function duplicateMessage(hostId: string): string {
  return (
    `two running CONTROLs use host_id "${hostId}" (cloned machines share the default, the hostname): ` +
    'MASTER refused the second and assigns it nothing, since both would serve the same shards. ' +
    'Set a unique host_id on that machine (pm2 set discluster-control:host_id <name>) and restart its CONTROL'
  );
}
