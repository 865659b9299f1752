package toolkit

import (
	"encoding/json"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestInferPythonSchema(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		name             string
		params, required []string
		source           string
		want             string
	}{
		{
			name:   "no source: untyped, described by name, extras allowed",
			params: []string{"query", "limit"}, required: []string{"query"},
			want: `{"type":"object","properties":{"query":{"description":"query"},"limit":{"description":"limit"}},"required":["query"]}`,
		},
		{
			name:   "annotations of the six basic types, in params order",
			params: []string{"s", "i", "f", "b", "l", "d", "u"}, required: []string{"s"},
			source: `@client.register_tool(function_name="f", params=["s"], required_params=["s"], description="def fake(x):", auth_provider=None, auth_type=None, auth_with=None)
def f(s: str, i: int = 3, f: float = 1.5, b: bool = False, l: list = None, d: dict = {}, u=None, auth_token=None):
    return {}
`,
			want: `{"type":"object","properties":{"s":{"type":"string","description":"s"},"i":{"type":"integer","description":"i"},"f":{"type":"number","description":"f"},"b":{"type":"boolean","description":"b"},"l":{"type":"array","description":"l"},"d":{"type":"object","description":"d"},"u":{"description":"u"}},"required":["s"],"additionalProperties":false}`,
		},
		{
			name:   "typing forms, a string annotation, unions and literals; **kwargs allows extras",
			params: []string{"a", "b", "c", "e", "g", "h", "k", "m"},
			source: `async def tool(
    a: Optional[int],            # a comment, with: colons
    b: "List[str]" = (),
    c: typing.Dict[str, Any] = None,
    e: int | None = None,
    g: Union[str, int] = "x",
    h: Literal["asc", "desc"] = "asc",
    k: list[list[float]] = [],
    m: Tuple[int, ...] = (1, 2),
    *args,
    **kwargs,
) -> Dict[str, Any]:
    ...`,
			want: `{"type":"object","properties":{` +
				`"a":{"type":["integer","null"],"description":"a"},` +
				`"b":{"type":"array","items":{"type":"string"},"description":"b"},` +
				`"c":{"type":"object","description":"c"},` +
				`"e":{"type":["integer","null"],"description":"e"},` +
				`"g":{"description":"g"},` +
				`"h":{"type":"string","enum":["asc","desc"],"description":"h"},` +
				`"k":{"type":"array","items":{"type":"array","items":{"type":"number"}},"description":"k"},` +
				`"m":{"type":"array","items":{"type":"integer"},"description":"m"}}}`,
		},
		{
			name:   "Google docstring, required names missing from params are added",
			params: []string{"city"}, required: []string{"city", "units"},
			source: `def weather(city: str, units: str = "metric", auth_token=None):
    """Get the weather.

    Args:
        city (str): The city to look up,
            for example "Paris".
        units: metric or imperial.
        auth_token: injected by the SDK.

    Returns:
        dict: the weather.
    """
    return {}
`,
			want: `{"type":"object","properties":{"city":{"type":"string","description":"The city to look up, for example \"Paris\"."},"units":{"type":"string","description":"metric or imperial."}},"required":["city","units"],"additionalProperties":false}`,
		},
		{
			name:   "Sphinx docstring",
			params: []string{"q", "n"},
			source: "def search(q, n: int = 5):\n    '''Search.\n\n    :param str q: what to look for\n        in the index\n    :param n: how many\n    :returns: hits\n    '''\n",
			want:   `{"type":"object","properties":{"q":{"description":"what to look for in the index"},"n":{"type":"integer","description":"how many"}},"additionalProperties":false}`,
		},
		{
			name:   "NumPy docstring",
			params: []string{"x", "y"},
			source: "def add(x: float, y: float):\n    \"\"\"Add.\n\n    Parameters\n    ----------\n    x : float\n        The first.\n    y : float\n        The second,\n        and last.\n\n    Returns\n    -------\n    float\n    \"\"\"\n    return x + y\n",
			want:   `{"type":"object","properties":{"x":{"type":"number","description":"The first."},"y":{"type":"number","description":"The second, and last."}},"additionalProperties":false}`,
		},
		{
			name:   "no parameters at all",
			source: "def ping():\n    return 'pong'\n",
			want:   `{"type":"object","properties":{},"additionalProperties":false}`,
		},
		{
			name:   "unreadable source: untyped, extras allowed",
			params: []string{"x"},
			source: "lambda x: x",
			want:   `{"type":"object","properties":{"x":{"description":"x"}}}`,
		},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			got := InferPythonSchema(c.params, c.required, c.source)
			var gv, wv any
			if err := json.Unmarshal(got, &gv); err != nil {
				t.Fatalf("not JSON: %v\n%s", err, got)
			}
			if err := json.Unmarshal([]byte(c.want), &wv); err != nil {
				t.Fatalf("bad want: %v", err)
			}
			if d := cmp.Diff(wv, gv); d != "" {
				t.Errorf("schema mismatch (-want +got):\n%s\ngot %s", d, got)
			}
			// Property order is the parameter order models see.
			if string(got) != compactJSON(t, c.want) {
				t.Errorf("got  %s\nwant %s", got, compactJSON(t, c.want))
			}
			if _, err := checkSchema(got, "schema"); err != nil {
				t.Errorf("not a valid JSON Schema: %v", err)
			}
		})
	}
}

func compactJSON(t *testing.T, s string) string {
	t.Helper()
	var v json.RawMessage
	if err := json.Unmarshal([]byte(s), &v); err != nil {
		t.Fatal(err)
	}
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// FuzzInferPythonSchema: whatever the source, the result is a valid JSON
// Schema object and the parser does not panic or loop.
func FuzzInferPythonSchema(f *testing.F) {
	for _, s := range []string{
		"def f(a: int, b: 'str' = \"x\", *args, **kw):\n    \"\"\"Args:\n        a: the a\n    \"\"\"\n",
		"@dec(x=')')\ndef g(a: Dict[str, List[int]] = {'k': [1, 2]}) -> None: pass",
		"def h(a: Literal['a', 1], b: Optional[", "def (", "'''", "def f(a=(1,", "",
	} {
		f.Add(s, "a", "b")
	}
	f.Fuzz(func(t *testing.T, src, p1, p2 string) {
		params := []string{p1, p2}
		out := InferPythonSchema(params, []string{p1}, src)
		if !json.Valid(out) {
			t.Fatalf("invalid JSON %q", out)
		}
		if _, err := checkSchema(out, "schema"); err != nil {
			t.Fatalf("invalid schema %s: %v", out, err)
		}
	})
}
