// `fleetjobs` from the sources, for tests that run the CLI as a real process.
import { main } from '../../src/cli/main.js';

process.exitCode = await main(process.argv.slice(2));
