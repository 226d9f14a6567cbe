// cni-pod sets a pod's network up, or tears it down, through go-cni the way containerd's CRI
// plugin does for a pod sandbox: cni.New with a plugin dir and a conf dir, Load, then Setup
// (or Remove) with the sandbox id, the pod's netns path and the K8S_POD_* labels the CRI
// passes. libcni writes its result cache below /var/lib/cni, so the tests run it in a mount
// namespace of their own with a scratch directory over /var/lib.
//
// Usage: cni-pod setup|remove CONF_DIR SANDBOX_ID NETNS_PATH POD_NAMESPACE POD_NAME POD_UID
package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"

	cni "github.com/containerd/go-cni"
)

func main() {
	if len(os.Args) != 8 {
		fmt.Fprintln(os.Stderr, "usage: cni-pod setup|remove CONF_DIR SANDBOX_ID NETNS_PATH POD_NAMESPACE POD_NAME POD_UID")
		os.Exit(2)
	}
	action, confDir, id, netns := os.Args[1], os.Args[2], os.Args[3], os.Args[4]
	labels := map[string]string{
		"K8S_POD_NAMESPACE":          os.Args[5],
		"K8S_POD_NAME":               os.Args[6],
		"K8S_POD_INFRA_CONTAINER_ID": id,
		"K8S_POD_UID":                os.Args[7],
		"IgnoreUnknown":              "1",
	}
	c, err := cni.New(
		cni.WithMinNetworkCount(2),
		cni.WithPluginConfDir(confDir),
		cni.WithPluginDir([]string{"/usr/lib/cni"}),
		cni.WithInterfacePrefix("eth"),
	)
	if err != nil {
		fail("new", err)
	}
	if err := c.Load(cni.WithLoNetwork, cni.WithDefaultConf); err != nil {
		fail("load", err)
	}
	ctx := context.Background()
	switch action {
	case "setup":
		result, err := c.Setup(ctx, id, netns, cni.WithLabels(labels))
		if err != nil {
			fail("setup", err)
		}
		out, _ := json.Marshal(result)
		fmt.Println(string(out))
	case "remove":
		if err := c.Remove(ctx, id, netns, cni.WithLabels(labels)); err != nil {
			fail("remove", err)
		}
	default:
		fmt.Fprintf(os.Stderr, "cni-pod: unknown action %q\n", action)
		os.Exit(2)
	}
}

func fail(what string, err error) {
	fmt.Fprintf(os.Stderr, "cni-pod: %s: %v\n", what, err)
	os.Exit(1)
}
