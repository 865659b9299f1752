package sandbox

import (
	"fmt"
	"reflect"
	"strconv"

	"github.com/dop251/goja"
)

// maxStringLength caps the strings that String.prototype.repeat, padStart
// and padEnd may build (in UTF-16 code units): one call of those is the
// cheapest way to allocate gigabytes in a single, uninterruptible native step.
const maxStringLength = 1 << 24

// capStringBuilders replaces repeat, padStart and padEnd with natives that
// refuse results longer than maxStringLength, then call the original.
// String.prototype is reached through a string value, which does not
// materialise the String constructor.
func (e *execution) capStringBuilders() error {
	proto := e.vm.ToValue("").ToObject(e.vm).Prototype()
	for _, name := range []string{"repeat", "padStart", "padEnd"} {
		orig, ok := goja.AssertFunction(proto.Get(name))
		if !ok {
			continue
		}
		fn := func(call goja.FunctionCall) goja.Value {
			if goja.IsUndefined(call.This) || goja.IsNull(call.This) {
				panic(e.vm.NewTypeError("String.prototype." + name + " called on null or undefined"))
			}
			// Convert once and hand the converted values on, so a toString
			// or valueOf with side effects runs once, as with the original.
			s := call.This.ToString()
			n := call.Argument(0).ToFloat()
			length := n
			if name == "repeat" {
				length = float64(stringLength(s)) * n
			}
			if length > maxStringLength {
				e.throw(rangeError, "Invalid string length: "+name+" would build more than 16777216 characters")
			}
			args := append([]goja.Value{e.vm.ToValue(n)}, call.Arguments[min(1, len(call.Arguments)):]...)
			v, err := orig(s, args...)
			if err != nil {
				panic(err) // rethrow the RangeError (negative count) or the interrupt
			}
			return v
		}
		if err := proto.DefineDataProperty(name, e.vm.ToValue(fn), goja.FLAG_TRUE, goja.FLAG_TRUE, goja.FLAG_FALSE); err != nil {
			return err
		}
	}
	return nil
}

func stringLength(v goja.Value) int {
	if s, ok := v.(goja.String); ok {
		return s.Length()
	}
	return len(v.String())
}

// maxArrayLength caps the arrays Array.prototype.fill and join may walk and
// Array.from may build from an array or an array-like (in elements): each
// is one native step that cannot be interrupted, and on a sparse array of a
// huge length (new Array(1e9) costs nothing) it runs for minutes and
// allocates gigabytes before the run's time or memory limit can act.
const maxArrayLength = 1 << 22

// capArrayBuilders replaces Array.prototype.fill and join and Array.from
// with natives that refuse lengths past maxArrayLength, then call the
// original. Runs with a memory limit only (see Limits.MaxMemory).
func (e *execution) capArrayBuilders() error {
	arrayCtor, ok := e.vm.GlobalObject().Get("Array").(*goja.Object)
	if !ok {
		return fmt.Errorf("the global Array is not an object")
	}
	proto := e.vm.NewArray().Prototype()
	length := func(v goja.Value) float64 {
		if goja.IsUndefined(v) || goja.IsNull(v) {
			return 0
		}
		return v.ToObject(e.vm).Get("length").ToFloat()
	}
	tooLong := func(name string) {
		e.throw(rangeError, fmt.Sprintf("Invalid array length: %s would walk more than %d elements", name, maxArrayLength))
	}
	wrap := func(obj *goja.Object, name string, check func(call goja.FunctionCall)) error {
		orig, ok := goja.AssertFunction(obj.Get(name))
		if !ok {
			return nil
		}
		fn := func(call goja.FunctionCall) goja.Value {
			check(call)
			v, err := orig(call.This, call.Arguments...)
			if err != nil {
				panic(err) // rethrow what the original threw, or the interrupt
			}
			return v
		}
		return obj.DefineDataProperty(name, e.vm.ToValue(fn), goja.FLAG_TRUE, goja.FLAG_TRUE, goja.FLAG_FALSE)
	}
	// fill counts this.length, not the start..end it may be cut to: reading
	// start and end here would run their valueOf twice, and nobody fills a
	// slice of a four-million-element array.
	if err := wrap(proto, "fill", func(call goja.FunctionCall) {
		if length(call.This) > maxArrayLength {
			tooLong("fill")
		}
	}); err != nil {
		return err
	}
	if err := wrap(proto, "join", func(call goja.FunctionCall) {
		if length(call.This) > maxArrayLength {
			tooLong("join")
		}
	}); err != nil {
		return err
	}
	return wrap(arrayCtor, "from", func(call goja.FunctionCall) {
		src := call.Argument(0)
		obj, ok := src.(*goja.Object)
		if !ok {
			return // a string or a primitive: bounded by its own size
		}
		// An array is listed natively, element by element, however sparse
		// (Array.from(new Array(2 ** 28)) is gigabytes in one step). Its
		// length is its own data property: reading it runs nothing.
		if obj.ClassName() == "Array" && obj.ExportType() != typeProxy {
			if length(obj) > maxArrayLength {
				tooLong("Array.from")
			}
			return
		}
		if it := obj.GetSymbol(goja.SymIterator); it != nil && !goja.IsUndefined(it) && !goja.IsNull(it) {
			return // another iterable: its iteration runs JavaScript, or is bounded by the collection
		}
		if length(obj) > maxArrayLength {
			tooLong("Array.from")
		}
	})
}

// bufferCtorNames are the constructors capBuffers wraps; ArrayBuffer first.
var bufferCtorNames = [...]string{"ArrayBuffer", "Int8Array", "Uint8Array", "Uint8ClampedArray", "Int16Array",
	"Uint16Array", "Int32Array", "Uint32Array", "Float32Array", "Float64Array", "BigInt64Array", "BigUint64Array"}

var (
	typeArrayBuffer = reflect.TypeOf(goja.ArrayBuffer{})
	typeProxy       = reflect.TypeOf(goja.Proxy{})
	// typedArrayTypes are what typed arrays export as (Uint8ClampedArray
	// as []uint8): a slice over their memory, whose length is theirs.
	typedArrayTypes = map[reflect.Type]bool{
		reflect.TypeOf([]int8(nil)): true, reflect.TypeOf([]uint8(nil)): true,
		reflect.TypeOf([]int16(nil)): true, reflect.TypeOf([]uint16(nil)): true,
		reflect.TypeOf([]int32(nil)): true, reflect.TypeOf([]uint32(nil)): true,
		reflect.TypeOf([]float32(nil)): true, reflect.TypeOf([]float64(nil)): true,
		reflect.TypeOf([]int64(nil)): true, reflect.TypeOf([]uint64(nil)): true,
	}
)

// bufferCaps holds the wrapped constructors of one VM.
type bufferCaps struct {
	e        *execution
	maxBytes int64
	ctors    [len(bufferCtorNames)]bufferCtor
}

type bufferCtor struct {
	name  string
	size  int64        // bytes per element; 1 for ArrayBuffer
	raw   *goja.Object // the unwrapped constructor, never reachable by the code
	proxy *goja.Object
}

// capBuffers caps ArrayBuffer and the typed arrays at maxBytes per
// allocation. One `new ArrayBuffer(2 ** 40)` is a single allocation no
// watchdog can stop, and past the machine's memory the Go runtime does not
// panic, it aborts the whole process.
//
// Each constructor is replaced, on the global object and as its
// prototype's constructor, by a proxy with a native construct trap
// (construct): statics, instanceof, subclassing and species keep working
// as before (`x.constructor === Uint8Array` still holds), and the
// unwrapped constructor is not reachable: no instance exists before the
// code runs, and every instance it makes leads back to a proxy. All of it
// is done from Go, so nothing the code patches can interfere.
//
// It is eager: defining anything over these globals (an accessor that
// would wrap them on first use) materialises each constructor as much as
// reading it does, which is nearly all of the cost, so laziness would
// only add the cost of the accessors. Runs with a memory limit only.
func (e *execution) capBuffers(maxBytes int64) error {
	c := &bufferCaps{e: e, maxBytes: maxBytes}
	g := e.vm.GlobalObject()
	trap := &goja.ProxyTrapConfig{Construct: c.construct}
	hasInstance := e.vm.ToValue(c.hasInstance)
	for i, name := range bufferCtorNames {
		raw, ok := g.Get(name).(*goja.Object)
		if !ok {
			return fmt.Errorf("the global %s is not an object", name)
		}
		size := int64(1)
		if i > 0 {
			size = raw.Get("BYTES_PER_ELEMENT").ToInteger()
		}
		proxy := e.vm.ToValue(e.vm.NewProxy(raw, trap)).(*goja.Object)
		c.ctors[i] = bufferCtor{name: name, size: size, raw: raw, proxy: proxy}

		// goja cannot run instanceof against a proxy (it throws), so the
		// constructors get the ordinary check as Symbol.hasInstance: own on
		// ArrayBuffer, and on %TypedArray%, which every typed array
		// constructor inherits from.
		switch i {
		case 0:
			if err := raw.DefineDataPropertySymbol(goja.SymHasInstance, hasInstance, goja.FLAG_FALSE, goja.FLAG_TRUE, goja.FLAG_FALSE); err != nil {
				return err
			}
		case 1:
			if err := raw.Prototype().DefineDataPropertySymbol(goja.SymHasInstance, hasInstance, goja.FLAG_FALSE, goja.FLAG_TRUE, goja.FLAG_FALSE); err != nil {
				return err
			}
		}
		proto, ok := raw.Get("prototype").(*goja.Object)
		if !ok {
			return fmt.Errorf("%s.prototype is not an object", name)
		}
		if err := proto.DefineDataProperty("constructor", proxy, goja.FLAG_TRUE, goja.FLAG_TRUE, goja.FLAG_FALSE); err != nil {
			return err
		}
		if err := g.DefineDataProperty(name, proxy, goja.FLAG_TRUE, goja.FLAG_TRUE, goja.FLAG_FALSE); err != nil {
			return err
		}
	}
	return c.capTypedArrayFrom()
}

// hasInstance is OrdinaryHasInstance for `this` (a proxy or a subclass):
// whether its prototype is on v's prototype chain.
func (c *bufferCaps) hasInstance(call goja.FunctionCall) goja.Value {
	vm := c.e.vm
	obj, ok := call.Argument(0).(*goja.Object)
	if !ok {
		return vm.ToValue(false)
	}
	proto := call.This.ToObject(vm).Get("prototype")
	for p := obj.Prototype(); p != nil; p = p.Prototype() {
		if p.SameAs(proto) {
			return vm.ToValue(true)
		}
	}
	return vm.ToValue(false)
}

func (c *bufferCaps) find(target *goja.Object) *bufferCtor {
	for i := range c.ctors {
		if c.ctors[i].raw == target {
			return &c.ctors[i]
		}
	}
	panic(c.e.vm.NewTypeError("buffer cap: unknown constructor"))
}

// refuse throws the RangeError of an allocation past the limit.
func (c *bufferCaps) refuse(name string, bytes float64) {
	c.e.throw(rangeError, fmt.Sprintf("Array buffer allocation failed: %s of %.0f bytes is more than the memory limit of %d bytes",
		name, bytes, c.maxBytes))
}

// check refuses n elements of ctor.
func (c *bufferCaps) check(ctor *bufferCtor, n float64) {
	if n*float64(ctor.size) > float64(c.maxBytes) {
		c.refuse(ctor.name, n*float64(ctor.size))
	}
}

// listBytes is what goja spends per element on the list it builds from an
// iterable before it allocates the typed array: that list is one native
// allocation too.
const listBytes = 16

// construct is the proxies' construct trap. What a constructor allocates
// is decided by its first argument:
//
//   - ArrayBuffer takes it as a length whatever it is: it is converted
//     here once and handed on converted, so a valueOf runs once, as
//     without the proxy;
//   - a typed array takes a primitive as a length, an ArrayBuffer as a
//     view (nothing is allocated), a typed array as a source of that many
//     elements, an array as an iterable of its length (goja lists an
//     array's elements natively, so `new Uint8Array(new Array(2 ** 30))`
//     is one uninterruptible step), and any other object as an iterable
//     or an array-like, which construct builds itself (typedArrayFrom) so
//     that it can count before it allocates and check the run's interrupt
//     while it copies.
func (c *bufferCaps) construct(target *goja.Object, args []goja.Value, newTarget *goja.Object) *goja.Object {
	ctor := c.find(target)
	if newTarget == ctor.proxy {
		newTarget = target
	}
	if len(args) == 0 {
		return c.call(ctor, newTarget, args)
	}
	if ctor == &c.ctors[0] { // ArrayBuffer
		n := args[0].ToNumber()
		c.check(ctor, n.ToFloat())
		args = append([]goja.Value{n}, args[1:]...)
		return c.call(ctor, newTarget, args)
	}
	obj, ok := args[0].(*goja.Object)
	if !ok {
		// Converting a primitive runs nothing (a symbol or a BigInt throws
		// the TypeError the original would); the original converts it again.
		c.check(ctor, args[0].ToFloat())
		return c.call(ctor, newTarget, args)
	}
	switch t := obj.ExportType(); {
	case t == typeArrayBuffer:
		return c.call(ctor, newTarget, args) // a view
	case typedArrayTypes[t]:
		c.check(ctor, float64(reflect.ValueOf(obj.Export()).Len()))
		return c.call(ctor, newTarget, args)
	case obj.ClassName() == "Array" && t != typeProxy:
		// An array's length is its own data property: reading it runs
		// nothing. Its iterator may have been replaced, but then it runs
		// JavaScript at each step, which the run's limits can stop.
		n := obj.Get("length").ToFloat()
		c.check(ctor, n)
		if n*listBytes > float64(c.maxBytes) {
			c.refuse(ctor.name, n*listBytes)
		}
		return c.call(ctor, newTarget, args)
	}
	return c.from(ctor, newTarget, obj)
}

// call constructs target with args and newTarget, rethrowing what it throws.
func (c *bufferCaps) call(ctor *bufferCtor, newTarget *goja.Object, args []goja.Value) *goja.Object {
	construct, _ := goja.AssertConstructor(ctor.raw)
	o, err := construct(newTarget, args...)
	if err != nil {
		panic(err) // rethrow the exception or the interrupt
	}
	return o
}

// from is goja's typedArrayFrom for an object that is neither a buffer, a
// typed array nor an array, in the same order of observable steps: read
// Symbol.iterator once; for an iterable, list its values, then allocate,
// then store each (converting it); for an array-like, read its length,
// allocate, then read and store each element. It refuses more elements
// than the limit allows before allocating, and stops when the run is
// stopped.
func (c *bufferCaps) from(ctor *bufferCtor, newTarget *goja.Object, src *goja.Object) *goja.Object {
	vm := c.e.vm
	if m := src.GetSymbol(goja.SymIterator); m != nil && !goja.IsUndefined(m) && !goja.IsNull(m) {
		method, ok := goja.AssertFunction(m)
		if !ok {
			panic(vm.NewTypeError(m.String() + " is not a method"))
		}
		values := c.list(ctor, src, method)
		ta := c.call(ctor, newTarget, []goja.Value{vm.ToValue(len(values))})
		for i, v := range values {
			c.poll(i)
			if err := ta.Set(strconv.Itoa(i), v); err != nil {
				panic(err)
			}
		}
		return ta
	}
	n := src.Get("length").ToInteger() // ToLength, then toIntStrict as goja does
	if n < 0 {
		n = 0
	}
	c.check(ctor, float64(n))
	ta := c.call(ctor, newTarget, []goja.Value{vm.ToValue(n)})
	for i := int64(0); i < n; i++ {
		c.poll(int(i))
		key := strconv.FormatInt(i, 10)
		v := src.Get(key)
		if v == nil {
			v = goja.Undefined()
		}
		if err := ta.Set(key, v); err != nil {
			panic(err)
		}
	}
	return ta
}

// list runs the iterator method of src to the end, as goja's
// iterableToList, but refuses more values than the limit allows.
func (c *bufferCaps) list(ctor *bufferCtor, src *goja.Object, method goja.Callable) []goja.Value {
	vm := c.e.vm
	it, err := method(src)
	if err != nil {
		panic(err)
	}
	iter, ok := it.(*goja.Object)
	if !ok {
		panic(vm.NewTypeError("Result of the Symbol.iterator method is not an object"))
	}
	nextFn, ok := goja.AssertFunction(iter.Get("next"))
	if !ok {
		panic(vm.NewTypeError("iterator.next is not a function"))
	}
	var values []goja.Value
	for i := 0; ; i++ {
		c.poll(i)
		r, err := nextFn(iter)
		if err != nil {
			panic(err)
		}
		res, ok := r.(*goja.Object)
		if !ok {
			panic(vm.NewTypeError("Iterator result " + r.String() + " is not an object"))
		}
		if res.Get("done").ToBoolean() {
			return values
		}
		n := float64(len(values) + 1)
		c.check(ctor, n)
		if n*listBytes > float64(c.maxBytes) {
			c.refuse(ctor.name, n*listBytes)
		}
		v := res.Get("value")
		if v == nil {
			v = goja.Undefined()
		}
		values = append(values, v)
	}
}

// poll stops a long native loop once the run has been stopped (time,
// memory, cancellation): the interrupt only lands when JavaScript runs.
func (c *bufferCaps) poll(i int) {
	if i&0xfff == 0 && c.e.isKilled() {
		panic(&goja.InterruptedError{})
	}
}

// capTypedArrayFrom wraps %TypedArray%.from, which every typed array
// constructor inherits: from an iterable source it lists the values
// natively before it allocates anything (through the constructor it is
// called on, which the proxies cap), so for an array it refuses a length
// whose list alone would pass the limit. Any other source runs
// JavaScript at each step, or is bounded by what exists.
func (c *bufferCaps) capTypedArrayFrom() error {
	typedArray := c.ctors[1].raw.Prototype()
	orig, ok := goja.AssertFunction(typedArray.Get("from"))
	if !ok {
		return nil
	}
	fn := func(call goja.FunctionCall) goja.Value {
		if src, ok := call.Argument(0).(*goja.Object); ok && src.ClassName() == "Array" && src.ExportType() != typeProxy {
			if n := src.Get("length").ToFloat(); n*listBytes > float64(c.maxBytes) {
				c.refuse("TypedArray.from", n*listBytes)
			}
		}
		v, err := orig(call.This, call.Arguments...)
		if err != nil {
			panic(err)
		}
		return v
	}
	return typedArray.DefineDataProperty("from", c.e.vm.ToValue(fn), goja.FLAG_TRUE, goja.FLAG_TRUE, goja.FLAG_FALSE)
}
