/** What the Node benchmark entry points share: flag parsing and a main that always exits. */
import { Engine } from '../src';

/** The value after `--name` on the command line. */
export function argument(name: string): string | undefined {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : undefined;
}

/** A readable name of the engine's adapter. */
export function adapterName(engine: Engine): string {
  const info = engine.device.adapterInfo;
  return [info?.vendor, info?.architecture, info?.device, info?.description].filter(Boolean).join(' / ') || 'unknown adapter';
}

/** Runs `main` and ends the process (dawn.node would keep it alive). */
export function runMain(main: () => Promise<void>): void {
  main().then(
    () => process.exit(0),
    (err: unknown) => {
      console.error(err);
      process.exit(1);
    },
  );
}
