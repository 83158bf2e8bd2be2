// Entry point of the workflow bundle (workers pass `workflowsPath: require.resolve('<dist>/workflows')`).
export { runPipeline } from './interpreter/run-pipeline';
export { scatterBatch } from './interpreter/scatter-batch';
