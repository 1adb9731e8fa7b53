// The herald command run from source (bin/herald.js runs the compiled dist/): the same main()
// with the same argv and env, so CLI tests exercise the current code without a build step.
import { main } from '../../src/cli/main.js';

main(process.argv.slice(2), process.env).then(
  (code) => process.exit(code),
  (err: unknown) => {
    console.error(err);
    process.exit(1);
  },
);
