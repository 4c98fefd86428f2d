/** Unix sockets of local helper processes (the connection keeper, a spare engine, libvirt's daemons). */
import { connect } from 'node:net';

/** Whether something accepts connections on the unix socket `path` (the connection is closed at once). */
export function socketAnswers(path: string): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect(path);
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}
