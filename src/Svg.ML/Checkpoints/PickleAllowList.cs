namespace Svg.ML.Checkpoints;

/// <summary>
/// The Python globals a checkpoint pickle may name. Anything else is refused with an
/// <see cref="UnsafeCheckpointException"/> naming it. The reader never executes a global: an allowed one only
/// becomes an inert value (a tensor reference, a dict, a <see cref="PickleObject"/> record). The list exists so that
/// a file carrying code (<c>os.system</c>, <c>builtins.eval</c>, <c>subprocess.Popen</c>, …) is rejected outright
/// instead of being silently parsed.
/// </summary>
/// <remarks>
/// <para>The default list (<see cref="Default"/>), and why each group is on it:</para>
/// <list type="bullet">
/// <item><b>Tensor rebuilding</b> — <c>torch._utils._rebuild_tensor</c>, <c>_rebuild_tensor_v2</c>,
/// <c>_rebuild_tensor_v3</c>, <c>_rebuild_parameter</c>, <c>_rebuild_parameter_with_state</c>; the typed storage
/// classes <c>torch.FloatStorage</c> … <c>torch.ComplexDoubleStorage</c> and <c>torch.UntypedStorage</c>;
/// <c>torch.Size</c>, <c>torch.device</c> and the dtypes (<c>torch.float32</c>, …). This is exactly what
/// <c>torch.save</c> writes for tensors and what <c>torch.load(weights_only=True)</c> accepts.</item>
/// <item><b>Python data containers</b> — <c>collections.OrderedDict</c> (every state dict), <c>defaultdict</c>,
/// <c>Counter</c>; <c>builtins</c> <c>set</c>, <c>frozenset</c>, <c>bytes</c>, <c>bytearray</c>, <c>complex</c>,
/// <c>slice</c>, <c>range</c>; <c>_codecs.encode</c> (how protocol 2 writes <c>bytes</c>);
/// <c>copyreg._reconstructor</c> (how protocols 0–1 write plain objects; its class argument is itself checked);
/// and the builtin type names <c>dict</c>, <c>list</c>, <c>tuple</c>, <c>int</c>, <c>float</c>, <c>str</c>,
/// <c>bool</c>, <c>object</c> that appear as values (omegaconf records the container type).</item>
/// <item><b>Inert records found in the non-weight entries of real training checkpoints</b> (Lightning
/// <c>hyper_parameters</c>, callback states, DiT's <c>args</c>): <c>argparse.Namespace</c>; <c>pathlib</c> paths;
/// <c>datetime</c> values; <c>typing.Any</c>; omegaconf <c>DictConfig</c>, <c>ListConfig</c>, <c>ContainerMetadata</c>,
/// <c>Metadata</c> and value nodes; Lightning's <c>AttributeDict</c>; numpy scalars, dtypes and arrays
/// (<c>numpy.core.multiarray.scalar</c>/<c>_reconstruct</c>, <c>numpy.ndarray</c>, <c>numpy.dtype</c>,
/// <c>numpy.dtypes.*DType</c>, and the numpy 2 <c>numpy._core</c> spellings). These classes only hold data; in
/// Python their reconstruction runs no user code, and here nothing runs at all.</item>
/// </list>
/// <para>Never allowed, even through <see cref="With"/> (refused as code-execution primitives): the modules
/// <c>os</c>, <c>posix</c>, <c>nt</c>, <c>subprocess</c>, <c>sys</c>, <c>shutil</c>, <c>socket</c>, <c>importlib</c>,
/// <c>runpy</c>, <c>pickle</c>, <c>marshal</c>, <c>ctypes</c>, <c>code</c>, <c>types</c>, <c>pty</c>,
/// <c>multiprocessing</c>, <c>webbrowser</c>, <c>asyncio</c>, <c>functools</c>, <c>operator</c>, <c>io</c>,
/// <c>builtins</c> functions such as <c>eval</c>, <c>exec</c>, <c>compile</c>, <c>__import__</c>, <c>open</c>,
/// <c>getattr</c>/<c>setattr</c>, <c>globals</c>, <c>type</c>, and torch entry points that load or run code
/// (<c>torch.load</c>, <c>torch.hub</c>, <c>torch.jit</c>, <c>torch.ops</c>, <c>torch._C</c>, <c>torch.package</c>).</para>
/// </remarks>
public sealed class PickleAllowList
{
    static readonly string[] StorageTypes =
    [
        "FloatStorage", "DoubleStorage", "HalfStorage", "BFloat16Storage", "LongStorage", "IntStorage", "ShortStorage",
        "CharStorage", "ByteStorage", "BoolStorage", "ComplexFloatStorage", "ComplexDoubleStorage", "UntypedStorage",
    ];

    static readonly string[] DTypes =
    [
        "float32", "float", "float64", "double", "float16", "half", "bfloat16", "int64", "long", "int32", "int",
        "int16", "short", "int8", "uint8", "bool", "complex64", "cfloat", "complex128", "cdouble",
    ];

    static readonly string[] DefaultGlobals =
    [
        "torch._utils._rebuild_tensor", "torch._utils._rebuild_tensor_v2", "torch._utils._rebuild_tensor_v3",
        "torch._utils._rebuild_parameter", "torch._utils._rebuild_parameter_with_state",
        "torch.Size", "torch.device",
        .. StorageTypes.Select(s => "torch." + s),
        .. DTypes.Select(d => "torch." + d),
        "collections.OrderedDict", "collections.defaultdict", "collections.Counter",
        "builtins.set", "builtins.frozenset", "builtins.bytes", "builtins.bytearray", "builtins.complex",
        "builtins.slice", "builtins.range", "builtins.dict", "builtins.list", "builtins.tuple", "builtins.int",
        "builtins.float", "builtins.str", "builtins.bool", "builtins.object",
        "_codecs.encode", "copyreg._reconstructor",
        "argparse.Namespace",
        "pathlib.Path", "pathlib.PosixPath", "pathlib.WindowsPath", "pathlib.PurePath", "pathlib.PurePosixPath",
        "pathlib.PureWindowsPath",
        "datetime.datetime", "datetime.date", "datetime.time", "datetime.timedelta", "datetime.timezone",
        "typing.Any",
        "omegaconf.dictconfig.DictConfig", "omegaconf.listconfig.ListConfig", "omegaconf.base.ContainerMetadata",
        "omegaconf.base.Metadata", "omegaconf.nodes.AnyNode", "omegaconf.nodes.StringNode",
        "omegaconf.nodes.IntegerNode", "omegaconf.nodes.FloatNode", "omegaconf.nodes.BooleanNode",
        "omegaconf.nodes.BytesNode", "omegaconf.nodes.PathNode", "omegaconf.nodes.EnumNode",
        "omegaconf.nodes.ValueNode",
        "pytorch_lightning.utilities.parsing.AttributeDict", "lightning.pytorch.utilities.parsing.AttributeDict",
        "lightning_fabric.utilities.data.AttributeDict", "lightning.fabric.utilities.data.AttributeDict",
        "numpy.core.multiarray.scalar", "numpy._core.multiarray.scalar", "numpy.core.multiarray._reconstruct",
        "numpy._core.multiarray._reconstruct", "numpy.ndarray", "numpy.dtype",
    ];

    static readonly string[] DeniedModules =
    [
        "os", "posix", "nt", "subprocess", "sys", "shutil", "socket", "importlib", "runpy", "pickle", "_pickle",
        "marshal", "ctypes", "code", "codeop", "types", "pty", "multiprocessing", "webbrowser", "asyncio",
        "functools", "operator", "io", "_io", "tempfile", "glob", "signal", "threading", "_thread",
        "torch.hub", "torch.jit", "torch.ops", "torch._C", "torch.package", "torch.load", "torch.serialization",
        "pip", "setuptools", "distutils", "commands", "platform", "ssl", "http", "urllib", "ftplib", "smtplib",
    ];

    static readonly HashSet<string> DeniedBuiltins =
    [
        "eval", "exec", "execfile", "compile", "__import__", "open", "file", "getattr", "setattr", "delattr",
        "globals", "locals", "vars", "input", "breakpoint", "apply", "reload", "type", "memoryview", "help",
        "exit", "quit", "print", "super", "classmethod", "staticmethod", "property", "__build_class__",
    ];

    readonly HashSet<string> _allowed;

    PickleAllowList(IEnumerable<string> allowed) { _allowed = new HashSet<string>(allowed, StringComparer.Ordinal); }

    /// <summary>The default list (see the remarks of <see cref="PickleAllowList"/>).</summary>
    public static PickleAllowList Default { get; } = new(DefaultGlobals);

    /// <summary>The allowed globals (<c>module.name</c>), sorted; <c>numpy.dtypes.*DType</c> is allowed as a pattern.</summary>
    public IReadOnlyList<string> Globals => _allowed.Order(StringComparer.Ordinal).ToList();

    /// <summary>
    /// A copy that also allows <paramref name="globals"/> (<c>module.name</c>) — for inert data classes of a trusted
    /// training setup. Refuses (with <see cref="ArgumentException"/>) anything in the never-allowed set.
    /// </summary>
    public PickleAllowList With(params string[] globals)
    {
        foreach (var g in globals)
        {
            int dot = g.LastIndexOf('.');
            if (dot <= 0 || dot == g.Length - 1) throw new ArgumentException($"'{g}' is not of the form module.name.", nameof(globals));
            if (DenialReason(g[..dot], g[(dot + 1)..]) is { } why) throw new ArgumentException($"'{g}' can never be allowed: {why}.", nameof(globals));
        }
        return new PickleAllowList(_allowed.Concat(globals));
    }

    /// <summary>A copy that no longer allows <paramref name="globals"/> (<c>module.name</c>), for a stricter policy.</summary>
    public PickleAllowList Without(params string[] globals) => new(_allowed.Except(globals, StringComparer.Ordinal));

    /// <summary>Null when <c>module.name</c> may be used; otherwise why it is refused.</summary>
    public string? Check(string module, string name) => Check(module, name, out _);

    internal string? Check(string module, string name, out bool canBeAllowed)
    {
        canBeAllowed = false;
        if (DenialReason(module, name) is { } why) return why;
        if (_allowed.Contains(module + "." + name)) return null;
        if (module == "numpy.dtypes" && name.EndsWith("DType", StringComparison.Ordinal) && name.All(char.IsLetterOrDigit)) return null;
        canBeAllowed = true;
        return "not on the allow-list of data-only globals";
    }

    static string? DenialReason(string module, string name)
    {
        if (module == "builtins" && (DeniedBuiltins.Contains(name) || name.StartsWith("__", StringComparison.Ordinal)))
            return "a code-execution primitive";
        string full = module + "." + name;
        foreach (var d in DeniedModules)
            if (module == d || module.StartsWith(d + ".", StringComparison.Ordinal) || full == d)
                return "a code-execution primitive";
        return null;
    }
}
