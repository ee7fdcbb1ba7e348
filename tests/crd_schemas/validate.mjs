// Validates Kubernetes objects of the monitoring.coreos.com and cert-manager.io
// kinds with the validators @kubernetes-models publishes (generated from the
// projects' CRD schemas). Reads a JSON array of objects from the file named last
// on the command line, prints a JSON array of {index, kind, name, error} (empty
// when all are valid). Fed on stdin (`node --input-type=module - FILE`) from the
// directory `make crd-schemas` installs into, so the imports resolve there.
import { readFileSync } from "node:fs";
import { PrometheusRule } from "@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1/PrometheusRule";
import { ServiceMonitor } from "@kubernetes-models/prometheus-operator/monitoring.coreos.com/v1/ServiceMonitor";
import { Certificate } from "@kubernetes-models/cert-manager/cert-manager.io/v1/Certificate";
import { Issuer } from "@kubernetes-models/cert-manager/cert-manager.io/v1/Issuer";

const MODELS = { PrometheusRule, ServiceMonitor, Certificate, Issuer };
const objects = JSON.parse(readFileSync(process.argv.at(-1), "utf8"));
const problems = [];
objects.forEach((obj, index) => {
  const Model = MODELS[obj.kind];
  const name = obj.metadata?.name;
  if (!Model || obj.apiVersion !== Model.apiVersion) {
    problems.push({ index, kind: obj.kind, name, error: `no validator for ${obj.apiVersion} ${obj.kind}` });
    return;
  }
  try {
    new Model(obj).validate();
  } catch (err) {
    problems.push({ index, kind: obj.kind, name, error: String(err.message ?? err) });
  }
});
process.stdout.write(JSON.stringify(problems));
