package chatatp_test

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
)

func TestWebhooks(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	base := e.srv.URL + "/api/v1/atp/llm-client/"
	res, body := postSDK(t, base+"webhooks/register/", e.client,
		py(pyObj{{"url", "https://hooks.example.com/atp"}, {"events", []string{"connection_success"}}, {"api_key", e.client}}))
	if res.StatusCode != http.StatusCreated {
		t.Fatalf("register: %d %s", res.StatusCode, body)
	}
	id, _ := field(t, body, "id").(string)
	if id == "" || field(t, body, "webhook_id") != id || field(t, body, "url") != "https://hooks.example.com/atp" ||
		!strings.HasPrefix(fmt.Sprint(field(t, body, "secret")), "whsec_") || field(t, body, "created_at") == nil ||
		fmt.Sprint(field(t, body, "events")) != "[connection_success]" {
		t.Fatalf("register answer %s", body)
	}
	// Another key's webhooks are its own.
	postSDK(t, base+"webhooks/register/", e.scoped, py(pyObj{{"url", "https://other.example.com"}, {"api_key", e.scoped}}))

	res, body = getSDK(t, base+"webhooks/", e.client)
	if res.StatusCode != http.StatusOK || !strings.HasPrefix(string(body), "[") || strings.Contains(string(body), "secret") ||
		field(t, body, "0.id") != id || field(t, body, "1") != nil {
		t.Fatalf("list: %d %s", res.StatusCode, body)
	}
	for _, c := range []struct {
		key, url string
		status   int
	}{
		{"bad", "notaurl", http.StatusBadRequest},
		{"event", "https://x.example.com", http.StatusBadRequest},
	} {
		events := []string{"connection_success"}
		if c.key == "event" {
			events = []string{"everything"}
		}
		res, body := postSDK(t, base+"webhooks/register/", e.client, py(pyObj{{"url", c.url}, {"events", events}, {"api_key", e.client}}))
		if res.StatusCode != c.status || field(t, body, "code") != "invalid_webhook" {
			t.Errorf("%s: %d %s", c.key, res.StatusCode, body)
		}
	}

	// delete_webhook goes out as GET; DELETE works too; then 404.
	res, body = getSDK(t, base+"webhooks/"+id+"/delete/", e.scoped)
	if res.StatusCode != http.StatusNotFound {
		t.Errorf("deleting another key's webhook: %d %s", res.StatusCode, body)
	}
	res, body = getSDK(t, base+"webhooks/"+id+"/delete/", e.client)
	if res.StatusCode != http.StatusOK || string(body) != "{\"status\":\"deleted\"}\n" {
		t.Errorf("delete: %d %s", res.StatusCode, body)
	}
	req, _ := http.NewRequest(http.MethodDelete, base+"webhooks/"+id+"/delete", nil)
	req.Header.Set("Authorization", "ApiKey "+e.client)
	if res, body := doReq(t, req); res.StatusCode != http.StatusNotFound {
		t.Errorf("second delete: %d %s", res.StatusCode, body)
	}
	if res, _ := getSDK(t, base+"webhooks/", ""); res.StatusCode != http.StatusUnauthorized {
		t.Errorf("list without a key: %d", res.StatusCode)
	}
	if res, _ := getSDK(t, base+"webhooks/", e.tkKey); res.StatusCode != http.StatusForbidden {
		t.Errorf("list with a toolkit key: %d", res.StatusCode)
	}
}

func TestStoreListings(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	base := e.srv.URL + "/api/v1/atp/llm-client/"
	for _, path := range []string{"store/toolkits/list/", "developers/toolkits/", "developers/toolkits"} {
		res, body := getSDK(t, base+path, e.client)
		if res.StatusCode != http.StatusOK || field(t, body, "count") != 2.0 ||
			field(t, body, "results.0.id") != "math" || field(t, body, "results.0.caption") != "Arithmetic helpers." ||
			field(t, body, "results.0.tool_count") != 4.0 || field(t, body, "results.1.id") != "other" {
			t.Fatalf("%s: %d %s", path, res.StatusCode, body)
		}
		// Scoped to the key.
		_, body = getSDK(t, base+path, e.scoped)
		if field(t, body, "count") != 1.0 || field(t, body, "results.1") != nil {
			t.Errorf("%s scoped: %s", path, body)
		}
	}
	_, body := getSDK(t, base+"store/toolkits/list/?page=2&page_size=1", e.client)
	if field(t, body, "count") != 2.0 || field(t, body, "results.0.id") != "other" || field(t, body, "results.1") != nil {
		t.Errorf("page 2: %s", body)
	}
	if res, _ := getSDK(t, base+"store/toolkits/list/?page_size=0", e.client); res.StatusCode != http.StatusBadRequest {
		t.Errorf("page_size=0: %d", res.StatusCode)
	}

	res, body := getSDK(t, base+"store/toolkits/math/", e.client)
	if res.StatusCode != http.StatusOK || field(t, body, "name") != "Math Tools" || field(t, body, "tools.0.name") != "add" ||
		field(t, body, "tools.0.input_schema.type") != "object" || strings.Contains(string(body), "executor") {
		t.Errorf("one toolkit: %d %s", res.StatusCode, body)
	}
	if res, _ := getSDK(t, base+"store/toolkits/other/", e.scoped); res.StatusCode != http.StatusForbidden {
		t.Errorf("scoped toolkit: %d", res.StatusCode)
	}
	if res, _ := getSDK(t, base+"store/toolkits/nope/", e.client); res.StatusCode != http.StatusNotFound {
		t.Errorf("unknown toolkit: %d", res.StatusCode)
	}
	// "store/toolkits/list/" is the listing even though it looks like an id,
	// and a developer named "toolkits" is a developer.
	res, body = getSDK(t, base+"store/developers/toolkits/", e.client)
	if res.StatusCode != http.StatusOK || field(t, body, "display_name") != "toolkits" || field(t, body, "toolkits.0.id") != "math" {
		t.Errorf("developer: %d %s", res.StatusCode, body)
	}
	res, body = getSDK(t, base+"store/developers/jane.doe+atp@example.com/", e.client)
	if res.StatusCode != http.StatusOK || field(t, body, "display_name") != "jane.doe+atp@example.com" {
		t.Errorf("developer with @ . +: %d %s", res.StatusCode, body)
	}
}
