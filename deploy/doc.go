// Package deploy holds no code: its tests check the deployment files
// beside them — deploy/nats (the NATS cluster configuration, started for
// real), deploy/postgres, deploy/compose and deploy/k8s (parsed strictly
// and checked against `roster serve`'s flags and the services).
package deploy
