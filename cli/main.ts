// Placeholder entry point; replaced by the command registry (issue: engine + CLI).
console.error('virnucpro: the command line is being built');
process.exit(1);
