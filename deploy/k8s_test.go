package deploy_test

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/nats-io/nats-server/v2/server"
	"go.yaml.in/yaml/v3"
)

// The Kubernetes objects of deploy/k8s, the fields Roster uses; strict
// decoding fails on any other.
type k8sObject struct {
	APIVersion string            `yaml:"apiVersion"`
	Kind       string            `yaml:"kind"`
	Metadata   k8sMeta           `yaml:"metadata"`
	Spec       k8sSpec           `yaml:"spec"`
	Data       map[string]string `yaml:"data"`
}

type k8sMeta struct {
	Name   string            `yaml:"name"`
	Labels map[string]string `yaml:"labels"`
}

type k8sSelector struct {
	MatchLabels map[string]string `yaml:"matchLabels"`
}

// k8sSpec holds the specs of a Deployment, a Service and a
// PodDisruptionBudget.
type k8sSpec struct {
	// Deployment
	Replicas *int `yaml:"replicas"`
	Strategy *struct {
		Type          string `yaml:"type"`
		RollingUpdate struct {
			MaxUnavailable int `yaml:"maxUnavailable"`
			MaxSurge       int `yaml:"maxSurge"`
		} `yaml:"rollingUpdate"`
	} `yaml:"strategy"`
	Template *struct {
		Metadata k8sMeta `yaml:"metadata"`
		Spec     k8sPod  `yaml:"spec"`
	} `yaml:"template"`
	// Deployment's and PodDisruptionBudget's label selector; a Service's is
	// a plain map (ServiceSelector).
	Selector     yaml.Node `yaml:"selector"`
	MinAvailable *int      `yaml:"minAvailable"`
	Ports        []struct {
		Name       string `yaml:"name"`
		Port       int    `yaml:"port"`
		TargetPort string `yaml:"targetPort"`
	} `yaml:"ports"`
}

type k8sPod struct {
	TerminationGracePeriodSeconds int `yaml:"terminationGracePeriodSeconds"`
	SecurityContext               struct {
		RunAsNonRoot bool `yaml:"runAsNonRoot"`
		RunAsUser    int  `yaml:"runAsUser"`
		FSGroup      int  `yaml:"fsGroup"`
	} `yaml:"securityContext"`
	Containers []k8sContainer `yaml:"containers"`
	Volumes    []struct {
		Name     string    `yaml:"name"`
		EmptyDir *struct{} `yaml:"emptyDir"`
		Secret   *struct {
			SecretName  string `yaml:"secretName"`
			DefaultMode int    `yaml:"defaultMode"`
		} `yaml:"secret"`
	} `yaml:"volumes"`
}

type k8sProbe struct {
	HTTPGet struct {
		Path string `yaml:"path"`
		Port string `yaml:"port"`
	} `yaml:"httpGet"`
	InitialDelaySeconds int `yaml:"initialDelaySeconds"`
	PeriodSeconds       int `yaml:"periodSeconds"`
	FailureThreshold    int `yaml:"failureThreshold"`
}

type k8sContainer struct {
	Name  string   `yaml:"name"`
	Image string   `yaml:"image"`
	Args  []string `yaml:"args"`
	Ports []struct {
		Name          string `yaml:"name"`
		ContainerPort int    `yaml:"containerPort"`
	} `yaml:"ports"`
	Env []struct {
		Name      string `yaml:"name"`
		Value     string `yaml:"value"`
		ValueFrom *struct {
			SecretKeyRef *struct {
				Name string `yaml:"name"`
				Key  string `yaml:"key"`
			} `yaml:"secretKeyRef"`
			ConfigMapKeyRef *struct {
				Name string `yaml:"name"`
				Key  string `yaml:"key"`
			} `yaml:"configMapKeyRef"`
		} `yaml:"valueFrom"`
	} `yaml:"env"`
	ReadinessProbe *k8sProbe `yaml:"readinessProbe"`
	LivenessProbe  *k8sProbe `yaml:"livenessProbe"`
	Resources      struct {
		Requests map[string]string `yaml:"requests"`
		Limits   map[string]string `yaml:"limits"`
	} `yaml:"resources"`
	SecurityContext struct {
		AllowPrivilegeEscalation bool `yaml:"allowPrivilegeEscalation"`
		ReadOnlyRootFilesystem   bool `yaml:"readOnlyRootFilesystem"`
	} `yaml:"securityContext"`
	VolumeMounts []struct {
		Name      string `yaml:"name"`
		MountPath string `yaml:"mountPath"`
		ReadOnly  bool   `yaml:"readOnly"`
	} `yaml:"volumeMounts"`
}

type kustomization struct {
	APIVersion string `yaml:"apiVersion"`
	Kind       string `yaml:"kind"`
	Namespace  string `yaml:"namespace"`
	Labels     []struct {
		Pairs map[string]string `yaml:"pairs"`
	} `yaml:"labels"`
	Resources       []string `yaml:"resources"`
	SecretGenerator []struct {
		Name  string   `yaml:"name"`
		Envs  []string `yaml:"envs"`
		Files []string `yaml:"files"`
	} `yaml:"secretGenerator"`
	Images []struct {
		Name    string `yaml:"name"`
		NewName string `yaml:"newName"`
		NewTag  string `yaml:"newTag"`
	} `yaml:"images"`
	HelmCharts []struct {
		Name        string `yaml:"name"`
		Repo        string `yaml:"repo"`
		Version     string `yaml:"version"`
		ReleaseName string `yaml:"releaseName"`
		Namespace   string `yaml:"namespace"`
		ValuesFile  string `yaml:"valuesFile"`
	} `yaml:"helmCharts"`
}

// deploy/k8s (issue 13, item 4), parsed strictly as kustomize reads it:
// every service a Deployment of 2 replicas running `roster serve
// <service>` with readiness on /readyz and liveness on /healthz of its
// HTTP port, only environment variables roster reads, secrets from the
// generated Secret (every key in secrets.env.example), a Service and a
// PodDisruptionBudget selecting its pods; NATS from the official chart.
func TestKubernetesManifests(t *testing.T) {
	k := decodeStrict[kustomization](t, filepath.Join("k8s", "kustomization.yaml"))[0]
	if k.Kind != "Kustomization" || k.Namespace != "roster" {
		t.Fatalf("kustomization: %+v", k)
	}
	if len(k.HelmCharts) != 1 || k.HelmCharts[0].Name != "nats" || k.HelmCharts[0].Repo != "https://nats-io.github.io/k8s/helm/charts/" ||
		k.HelmCharts[0].Version == "" || k.HelmCharts[0].ValuesFile != "nats-values.yaml" {
		t.Fatalf("the NATS chart: %+v", k.HelmCharts)
	}
	secretKeys := map[string]map[string]string{}
	for _, g := range k.SecretGenerator {
		for _, e := range g.Envs {
			secretKeys[g.Name] = envExample(t, filepath.Join("k8s", e+".example"))
		}
		for _, f := range g.Files {
			secretKeys[g.Name] = map[string]string{f: ""}
		}
	}
	env := serveEnv(t)
	objects := map[string]k8sObject{}
	for _, r := range k.Resources {
		for _, o := range decodeStrict[k8sObject](t, filepath.Join("k8s", r)) {
			objects[o.Kind+"/"+o.Metadata.Name] = o
		}
	}
	config := objects["ConfigMap/roster-config"]
	for _, name := range services {
		d, ok := objects["Deployment/roster-"+name]
		if !ok {
			t.Errorf("no Deployment roster-%s", name)
			continue
		}
		labels := map[string]string{"app.kubernetes.io/name": "roster", "app.kubernetes.io/component": name}
		var sel k8sSelector
		if err := d.Spec.Selector.Decode(&sel); err != nil || !mapsEqual(sel.MatchLabels, labels) || !mapsEqual(d.Spec.Template.Metadata.Labels, labels) {
			t.Errorf("%s: selector %v, pod labels %v", name, sel.MatchLabels, d.Spec.Template.Metadata.Labels)
		}
		if d.Spec.Replicas == nil || *d.Spec.Replicas != 2 || d.Spec.Strategy.RollingUpdate.MaxUnavailable != 0 {
			t.Errorf("%s: replicas %v, strategy %+v", name, d.Spec.Replicas, d.Spec.Strategy)
		}
		pod := d.Spec.Template.Spec
		if len(pod.Containers) != 1 || pod.TerminationGracePeriodSeconds < 45 || !pod.SecurityContext.RunAsNonRoot {
			t.Errorf("%s: pod %+v", name, pod)
			continue
		}
		c := pod.Containers[0]
		if c.Image != "roster:dev" || !slices.Equal(c.Args, []string{"serve", name}) || len(c.Ports) != 1 || c.Ports[0].Name != "http" || c.Ports[0].ContainerPort != 8080 {
			t.Errorf("%s: image %q, args %v, ports %+v", name, c.Image, c.Args, c.Ports)
		}
		if c.ReadinessProbe == nil || c.ReadinessProbe.HTTPGet.Path != "/readyz" || c.ReadinessProbe.HTTPGet.Port != "http" ||
			c.LivenessProbe == nil || c.LivenessProbe.HTTPGet.Path != "/healthz" || c.LivenessProbe.HTTPGet.Port != "http" {
			t.Errorf("%s: readiness %+v, liveness %+v", name, c.ReadinessProbe, c.LivenessProbe)
		}
		values := map[string]string{}
		for _, e := range c.Env {
			if !env[e.Name] {
				t.Errorf("%s sets %s, which roster serve does not read", name, e.Name)
			}
			switch {
			case e.ValueFrom == nil:
				values[e.Name] = e.Value
			case e.ValueFrom.SecretKeyRef != nil:
				ref := e.ValueFrom.SecretKeyRef
				if _, ok := secretKeys[ref.Name][ref.Key]; !ok {
					t.Errorf("%s: %s from secret %s key %s, which the kustomization does not make", name, e.Name, ref.Name, ref.Key)
				}
				values[e.Name] = "secret:" + ref.Key
			case e.ValueFrom.ConfigMapKeyRef != nil:
				ref := e.ValueFrom.ConfigMapKeyRef
				if _, ok := objects["ConfigMap/"+ref.Name].Data[ref.Key]; !ok {
					t.Errorf("%s: %s from ConfigMap %s key %s, which does not exist", name, e.Name, ref.Name, ref.Key)
				}
			}
		}
		if values["ROSTER_HTTP"] != "0.0.0.0:8080" || values["ROSTER_STREAM_REPLICAS"] != "3" ||
			values["ROSTER_NATS_URL"] != "secret:"+name+"-nats-url" || values["ROSTER_DB"] != "secret:"+name+"-db-url" ||
			values["ROSTER_OPERATOR_TOKEN"] != "secret:operator-token" {
			t.Errorf("%s environment: %v", name, values)
		}
		if u := secretKeys["roster-secrets"][name+"-nats-url"]; !strings.HasPrefix(u, "nats://"+name+":") {
			t.Errorf("%s's NATS URL in secrets.env.example: %q, want its own user", name, u)
		}
		if u := secretKeys["roster-secrets"][name+"-db-url"]; !strings.HasPrefix(u, "postgres://roster_"+name+":") {
			t.Errorf("%s's database URL in secrets.env.example: %q, want its own role", name, u)
		}
		mounts := map[string]string{}
		for _, m := range c.VolumeMounts {
			mounts[m.Name] = m.MountPath
		}
		for _, v := range pod.Volumes {
			if _, ok := mounts[v.Name]; !ok {
				t.Errorf("%s: volume %s not mounted", name, v.Name)
			}
			delete(mounts, v.Name)
		}
		if len(mounts) != 0 {
			t.Errorf("%s mounts volumes it does not declare: %v", name, mounts)
		}

		svc, ok := objects["Service/roster-"+name]
		var svcSel map[string]string
		if !ok || svc.Spec.Selector.Decode(&svcSel) != nil || !mapsEqual(svcSel, labels) || len(svc.Spec.Ports) != 1 || svc.Spec.Ports[0].TargetPort != "http" {
			t.Errorf("Service roster-%s: %+v", name, svc)
		}
		pdb, ok := objects["PodDisruptionBudget/roster-"+name]
		var pdbSel k8sSelector
		if !ok || pdb.APIVersion != "policy/v1" || pdb.Spec.Selector.Decode(&pdbSel) != nil || !mapsEqual(pdbSel.MatchLabels, labels) ||
			pdb.Spec.MinAvailable == nil || *pdb.Spec.MinAvailable < 1 || *pdb.Spec.MinAvailable >= *d.Spec.Replicas {
			t.Errorf("PodDisruptionBudget roster-%s: %+v", name, pdb)
		}
	}
	if config.Data["otlp-endpoint"] == "" {
		t.Error("no otlp-endpoint in roster-config")
	}
	audit := objects["Deployment/roster-audit"].Spec.Template.Spec
	var key string
	for _, e := range audit.Containers[0].Env {
		if e.Name == "ROSTER_AUDIT_SIGNING_KEY" {
			key = e.Value
		}
	}
	if filepath.Dir(key) != "/etc/roster/audit" || !slices.ContainsFunc(audit.Volumes, func(v struct {
		Name     string    `yaml:"name"`
		EmptyDir *struct{} `yaml:"emptyDir"`
		Secret   *struct {
			SecretName  string `yaml:"secretName"`
			DefaultMode int    `yaml:"defaultMode"`
		} `yaml:"secret"`
	}) bool {
		return v.Secret != nil && v.Secret.SecretName == "roster-audit-signing-key"
	}) {
		t.Errorf("audit's signing key %q and volumes %+v", key, audit.Volumes)
	}
}

func mapsEqual(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

// natsValues are the parts of the NATS chart's values Roster sets.
type natsValues struct {
	Config struct {
		Cluster struct {
			Enabled  bool `yaml:"enabled"`
			Replicas int  `yaml:"replicas"`
		} `yaml:"cluster"`
		JetStream struct {
			Enabled   bool `yaml:"enabled"`
			FileStore struct {
				Enabled bool `yaml:"enabled"`
				PVC     struct {
					Enabled bool   `yaml:"enabled"`
					Size    string `yaml:"size"`
				} `yaml:"pvc"`
			} `yaml:"fileStore"`
		} `yaml:"jetstream"`
		Merge struct {
			MaxPayload string `yaml:"max_payload"`
			Accounts   map[string]struct {
				JetStream string `yaml:"jetstream"`
				Users     []struct {
					User        string `yaml:"user"`
					Password    string `yaml:"password"`
					Permissions *struct {
						Publish struct {
							Allow []string `yaml:"allow"`
						} `yaml:"publish"`
						Subscribe struct {
							Allow []string `yaml:"allow"`
						} `yaml:"subscribe"`
						AllowResponses bool `yaml:"allow_responses"`
					} `yaml:"permissions"`
				} `yaml:"users"`
			} `yaml:"accounts"`
			SystemAccount string `yaml:"system_account"`
		} `yaml:"merge"`
	} `yaml:"config"`
	Container struct {
		Env map[string]struct {
			ValueFrom struct {
				SecretKeyRef struct {
					Name string `yaml:"name"`
					Key  string `yaml:"key"`
				} `yaml:"secretKeyRef"`
			} `yaml:"valueFrom"`
		} `yaml:"env"`
	} `yaml:"container"`
	PodTemplate struct {
		TopologySpreadConstraints map[string]struct {
			MaxSkew           int    `yaml:"maxSkew"`
			WhenUnsatisfiable string `yaml:"whenUnsatisfiable"`
		} `yaml:"topologySpreadConstraints"`
	} `yaml:"podTemplate"`
	PodDisruptionBudget struct {
		Enabled bool `yaml:"enabled"`
	} `yaml:"podDisruptionBudget"`
}

// The NATS chart's values (deploy/k8s/nats-values.yaml) run a 3-node
// JetStream cluster with exactly the users and permissions of
// deploy/nats/nats.conf, their passwords from the Secret nats-users.
func TestKubernetesNATSValuesMatchNATSConf(t *testing.T) {
	v := decodeStrict[natsValues](t, filepath.Join("k8s", "nats-values.yaml"))[0]
	if !v.Config.Cluster.Enabled || v.Config.Cluster.Replicas != 3 || !v.Config.JetStream.Enabled || !v.Config.JetStream.FileStore.PVC.Enabled ||
		v.Config.Merge.SystemAccount != "SYS" || !v.PodDisruptionBudget.Enabled {
		t.Fatalf("values: %+v", v.Config)
	}
	for _, env := range natsUsers {
		t.Setenv(env, "VAR_"+env)
	}
	for _, e := range []string{"NATS_ROUTE_PASSWORD", "NATS_SYS_PASSWORD", "NATS_SERVER_NAME", "NATS_ROUTE_1", "NATS_ROUTE_2", "NATS_ROUTE_3"} {
		t.Setenv(e, "nats://r:r@x:1")
	}
	o, err := server.ProcessConfigFile(filepath.Join("nats", "nats.conf"))
	if err != nil {
		t.Fatal(err)
	}
	conf := map[string]*server.User{}
	for _, u := range o.Users {
		if u.Account.Name == "ROSTER" {
			conf[u.Username] = u
		}
	}
	users := v.Config.Merge.Accounts["ROSTER"].Users
	if len(users) != len(conf) || v.Config.Merge.Accounts["ROSTER"].JetStream != "enabled" {
		t.Fatalf("%d users in nats-values.yaml, %d in nats.conf", len(users), len(conf))
	}
	secret := envExample(t, filepath.Join("k8s", "nats-users.env.example"))
	for _, u := range users {
		c, ok := conf[u.User]
		if !ok {
			t.Errorf("user %s is not in nats.conf", u.User)
			continue
		}
		if u.Password != "<< $"+strings.TrimPrefix(c.Password, "VAR_")+" >>" {
			t.Errorf("user %s: password %q, nats.conf %q", u.User, u.Password, c.Password)
		}
		env := strings.TrimSuffix(strings.TrimPrefix(u.Password, "<< $"), " >>")
		if ref := v.Container.Env[env].ValueFrom.SecretKeyRef; ref.Name != "nats-users" || ref.Key != env {
			t.Errorf("user %s: %s from %+v", u.User, env, ref)
		}
		if _, ok := secret[env]; !ok {
			t.Errorf("user %s: %s not in nats-users.env.example", u.User, env)
		}
		if (u.Permissions == nil) != (c.Permissions == nil) {
			t.Errorf("user %s: permissions in one file only", u.User)
			continue
		}
		if c.Permissions == nil {
			continue
		}
		if !slices.Equal(u.Permissions.Publish.Allow, c.Permissions.Publish.Allow) ||
			!slices.Equal(u.Permissions.Subscribe.Allow, c.Permissions.Subscribe.Allow) ||
			u.Permissions.AllowResponses != (c.Permissions.Response != nil) {
			t.Errorf("user %s: permissions differ from nats.conf's", u.User)
		}
	}
	if _, err := os.Stat(filepath.Join("k8s", "nats-users.env.example")); err != nil {
		t.Fatal(err)
	}
}
