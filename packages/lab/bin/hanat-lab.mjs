#!/usr/bin/env node
import '../dist/hanat-lab.mjs';
