#!/usr/bin/env node
// The agent ships as one bundled file (dist/hanat-agent.cjs, built by scripts/build.mjs).
require('../dist/hanat-agent.cjs');
