using System.Collections.Concurrent;
using System.Reflection;
using System.Reflection.Emit;
using System.Runtime.CompilerServices;
using Microsoft.ML;
using Microsoft.ML.Data;
using Microsoft.ML.Runtime;

[assembly: InternalsVisibleTo("Bn.MLNet.Tests")]
[assembly: InternalsVisibleTo("Bn.MLNet.Benchmarks")]
[assembly: InternalsVisibleTo("Bn.MLNet.Samples")]

namespace Bn.MLNet;

/// <summary>
/// The one place where Bn.MLNet touches ML.NET internals. ML.NET 5.0 gives a transformer written outside its own
/// assemblies no public way to be saved and loaded through <c>mlContext.Model</c> (dotnet/machinelearning issues
/// 4911 and 6839): the members of <see cref="ModelSaveContext"/>, the whole <c>ModelLoadContext</c>,
/// <c>VersionInfo</c> and <c>LoadableClassAttribute</c> are internal to Microsoft.ML.Core.
/// </summary>
/// <remarks>
/// <para><b>Save</b> (inside <see cref="ICanSaveModel.Save"/>): <c>ModelSaveContext.CheckAtModel()</c>,
/// <c>ModelSaveContext.SetVersionInfo(VersionInfo)</c> with a <c>VersionInfo</c> made through its internal
/// constructor, the <c>ModelSaveContext.Writer</c> field, and <c>ModelSaveContext.SaveBinaryStream(string, Action&lt;BinaryWriter&gt;)</c>.</para>
/// <para><b>Load</b>: ML.NET reads the model header, calls <c>Assembly.Load(loaderAssemblyName)</c> and
/// <see cref="ComponentCatalog.RegisterAssembly"/> on the result, then looks up the loader signature among the
/// <c>LoadableClassAttribute</c>s of registered assemblies and calls the loader type's static
/// <c>Create(IHostEnvironment, ModelLoadContext)</c>. For every loadable type we emit (System.Reflection.Emit) a
/// small assembly named <c>Bn.MLNet.ModelLoader.&lt;signature&gt;</c> carrying
/// <c>[assembly: IgnoresAccessChecksTo("Microsoft.ML.Core")]</c>, <c>[assembly: IgnoresAccessChecksTo("Bn.MLNet")]</c>,
/// the <c>LoadableClassAttribute</c> and the loader type, whose <c>Create</c> forwards to <see cref="DispatchLoad"/>.
/// An <see cref="AppDomain.AssemblyResolve"/> handler, installed by this module's initializer, answers the emitted
/// names, so ML.NET registers the loader in every <see cref="MLContext"/> on its own. On the read side we touch
/// <c>ModelLoadContext.CheckAtModel(VersionInfo)</c>, <c>ModelLoadContext.Reader</c> and
/// <c>ModelLoadContext.TryLoadBinaryStream(string, Action&lt;BinaryReader&gt;)</c>.</para>
/// <para><b>Estimator plumbing</b>: the internal <c>SchemaShape.Column</c> constructor (estimators must return a
/// <see cref="SchemaShape"/>, which has no public way to describe a new column) and the explicitly implemented
/// <c>IInternalCatalog.Environment</c> of <see cref="TransformsCatalog"/> and of the trainers catalogs (to log through <c>mlContext.Log</c> and read its device settings); tests
/// also use the internal <c>SchemaShape.Create(DataViewSchema)</c>.</para>
/// <para><b>Devices</b>: the properties <c>GpuDeviceId</c> and <c>FallbackToCpu</c> of the internal
/// <c>IHostEnvironmentInternal</c>, which hold <see cref="MLContext.GpuDeviceId"/> and <see cref="MLContext.FallbackToCpu"/>
/// (the catalogs hand out the environment, not the context).</para>
/// <para>Every member is bound once by name; if an ML.NET update renames or removes one, <see cref="Verify"/> and
/// every save/load throw <see cref="MissingMemberException"/> naming the member.</para>
/// </remarks>
internal static class MLNetInternals
{
    /// <summary>Simple name of the assembly that holds the internals we use.</summary>
    internal const string CoreAssemblySimpleName = "Microsoft.ML.Core";

    /// <summary>Prefix of the emitted loader assemblies' names.</summary>
    internal const string LoaderAssemblyPrefix = "Bn.MLNet.ModelLoader.";

    private static readonly Lazy<Bindings> s_bindings = new(() => new Bindings(), LazyThreadSafetyMode.ExecutionAndPublication);
    private static readonly ConcurrentDictionary<string, Loadable> s_loadables = new(StringComparer.OrdinalIgnoreCase);
    private static int s_resolverInstalled;

    /// <summary>
    /// Installs the assembly resolver for emitted loader assemblies and declares <see cref="BatchNormCnnTransformer"/>'s
    /// loader, as soon as any Bn.MLNet code runs.
    /// </summary>
#pragma warning disable CA2255 // The module initializer is the point: it makes loading work without an explicit call.
    [ModuleInitializer]
#pragma warning restore CA2255
    internal static void InstallResolver()
    {
        if (Interlocked.Exchange(ref s_resolverInstalled, 1) != 0)
            return;
        AppDomain.CurrentDomain.AssemblyResolve += OnAssemblyResolve;
        RegisterLoadable(typeof(BatchNormCnnTransformer), BatchNormCnnTransformer.LoaderSignature, (env, ctx) => BatchNormCnnTransformer.Create(env, ctx));
    }

    /// <summary>
    /// Binds every internal member used; throws <see cref="MissingMemberException"/> naming the first missing one.
    /// </summary>
    internal static void Verify() => _ = s_bindings.Value;

    /// <summary>The version of Microsoft.ML.Core in this process (for messages).</summary>
    internal static string CoreVersion => typeof(ModelSaveContext).Assembly.GetName().Version?.ToString() ?? "unknown";

    // ----------------------------------------------------------------------------------------------------------------
    // Registration of loadable types.

    /// <summary>
    /// Declares a loadable type: models whose header carries <paramref name="loaderSignature"/> are loaded by
    /// <paramref name="create"/>. Idempotent for the same signature and type.
    /// </summary>
    /// <param name="instanceType">The transformer type ML.NET receives (must implement <see cref="ITransformer"/>).</param>
    /// <param name="loaderSignature">At most 24 ASCII characters, unique in the process.</param>
    /// <param name="create">Creates the instance from the environment and the load context.</param>
    internal static void RegisterLoadable(Type instanceType, string loaderSignature, Func<IHostEnvironment, ModelLoadReader, object> create)
    {
        ArgumentNullException.ThrowIfNull(instanceType);
        ArgumentNullException.ThrowIfNull(create);
        CheckSignature(loaderSignature, 24, nameof(loaderSignature));
        if (!typeof(ITransformer).IsAssignableFrom(instanceType))
            throw new ArgumentException($"{instanceType} does not implement ITransformer.", nameof(instanceType));
        InstallResolver();
        var entry = s_loadables.GetOrAdd(loaderSignature, _ => new Loadable(instanceType, loaderSignature, create));
        if (entry.InstanceType != instanceType)
            throw new InvalidOperationException($"Loader signature '{loaderSignature}' is already registered for {entry.InstanceType}.");
    }

    /// <summary>Registers the emitted loader assembly of <paramref name="loaderSignature"/> in <paramref name="catalog"/>.</summary>
    internal static void RegisterInCatalog(ComponentCatalog catalog, string loaderSignature)
    {
        ArgumentNullException.ThrowIfNull(catalog);
        catalog.RegisterAssembly(GetLoadable(loaderSignature).Assembly);
    }

    /// <summary>The emitted loader assembly of a registered loadable type.</summary>
    internal static Assembly GetLoaderAssembly(string loaderSignature) => GetLoadable(loaderSignature).Assembly;

    /// <summary>Name written into model headers as the loader assembly of <paramref name="loaderSignature"/>.</summary>
    internal static string LoaderAssemblyName(string loaderSignature) => LoaderAssemblyPrefix + loaderSignature;

    private static Loadable GetLoadable(string loaderSignature) =>
        s_loadables.TryGetValue(loaderSignature, out var entry)
            ? entry
            : throw new InvalidOperationException($"No loadable type is registered under the loader signature '{loaderSignature}'.");

    private static Assembly? OnAssemblyResolve(object? sender, ResolveEventArgs args)
    {
        string? name = new AssemblyName(args.Name).Name;
        if (name is null || !name.StartsWith(LoaderAssemblyPrefix, StringComparison.Ordinal))
            return null;
        return s_loadables.TryGetValue(name[LoaderAssemblyPrefix.Length..], out var entry) ? entry.Assembly : null;
    }

    /// <summary>
    /// Called by the emitted <c>Create(IHostEnvironment, ModelLoadContext)</c> of every loader type.
    /// </summary>
    /// <param name="loaderSignature">The signature baked into the emitted loader.</param>
    /// <param name="env">ML.NET's environment.</param>
    /// <param name="ctx">The internal <c>Microsoft.ML.ModelLoadContext</c>.</param>
    internal static object DispatchLoad(string loaderSignature, IHostEnvironment env, object ctx)
    {
        var entry = GetLoadable(loaderSignature);
        var result = entry.Create(env, new ModelLoadReader(ctx));
        if (!entry.InstanceType.IsInstanceOfType(result))
            throw new InvalidOperationException($"The loader of '{loaderSignature}' returned {result?.GetType().ToString() ?? "null"}, not {entry.InstanceType}.");
        return result;
    }

    private sealed class Loadable(Type instanceType, string loaderSignature, Func<IHostEnvironment, ModelLoadReader, object> create)
    {
        private readonly Lazy<Assembly> _assembly = new(() => EmitLoaderAssembly(instanceType, loaderSignature), LazyThreadSafetyMode.ExecutionAndPublication);

        public Type InstanceType { get; } = instanceType;

        public Func<IHostEnvironment, ModelLoadReader, object> Create { get; } = create;

        public Assembly Assembly => _assembly.Value;
    }

    /// <summary>
    /// Emits <c>Bn.MLNet.ModelLoader.&lt;signature&gt;</c>: the access-check attributes, a public static loader type
    /// with <c>Create(IHostEnvironment, ModelLoadContext)</c> returning <paramref name="instanceType"/>, and the
    /// assembly-level <c>LoadableClassAttribute(instanceType, loaderType, null, typeof(SignatureLoadModel), userName, signature)</c>.
    /// </summary>
    private static Assembly EmitLoaderAssembly(Type instanceType, string loaderSignature)
    {
        var b = s_bindings.Value;
        string name = LoaderAssemblyName(loaderSignature);
        var assembly = AssemblyBuilder.DefineDynamicAssembly(new AssemblyName(name), AssemblyBuilderAccess.Run);
        var module = assembly.DefineDynamicModule(name);

        // The runtime recognizes IgnoresAccessChecksToAttribute by its full name in any assembly; define our own copy.
        var ignoresType = module.DefineType(
            "System.Runtime.CompilerServices.IgnoresAccessChecksToAttribute",
            TypeAttributes.Public | TypeAttributes.Sealed | TypeAttributes.Class,
            typeof(Attribute));
        var ignoresCtor = ignoresType.DefineConstructor(
            MethodAttributes.Public | MethodAttributes.HideBySig | MethodAttributes.SpecialName | MethodAttributes.RTSpecialName,
            CallingConventions.Standard,
            [typeof(string)]);
        var attributeCtor = typeof(Attribute).GetConstructor(BindingFlags.Instance | BindingFlags.NonPublic, Type.EmptyTypes)
            ?? throw Missing("System.Attribute..ctor()");
        var il = ignoresCtor.GetILGenerator();
        il.Emit(OpCodes.Ldarg_0);
        il.Emit(OpCodes.Call, attributeCtor);
        il.Emit(OpCodes.Ret);
        var ignoresCreated = ignoresType.CreateType();
        var ignoresCtorCreated = ignoresCreated.GetConstructor([typeof(string)])!;
        assembly.SetCustomAttribute(new CustomAttributeBuilder(ignoresCtorCreated, [b.CoreAssembly.GetName().Name!]));
        assembly.SetCustomAttribute(new CustomAttributeBuilder(ignoresCtorCreated, [typeof(MLNetInternals).Assembly.GetName().Name!]));

        // public static class Loader { public static TInstance Create(IHostEnvironment env, ModelLoadContext ctx)
        //     => (TInstance)MLNetInternals.DispatchLoad("<signature>", env, ctx); }
        var loader = module.DefineType(
            "Bn.MLNet.ModelLoaders." + loaderSignature,
            TypeAttributes.Public | TypeAttributes.Abstract | TypeAttributes.Sealed | TypeAttributes.Class);
        var create = loader.DefineMethod(
            "Create",
            MethodAttributes.Public | MethodAttributes.Static | MethodAttributes.HideBySig,
            instanceType,
            [typeof(IHostEnvironment), b.ModelLoadContextType]);
        create.DefineParameter(1, ParameterAttributes.None, "env");
        create.DefineParameter(2, ParameterAttributes.None, "ctx");
        var dispatch = typeof(MLNetInternals).GetMethod(nameof(DispatchLoad), BindingFlags.Static | BindingFlags.NonPublic)!;
        il = create.GetILGenerator();
        il.Emit(OpCodes.Ldstr, loaderSignature);
        il.Emit(OpCodes.Ldarg_0);
        il.Emit(OpCodes.Ldarg_1);
        il.Emit(OpCodes.Call, dispatch);
        il.Emit(OpCodes.Castclass, instanceType);
        il.Emit(OpCodes.Ret);
        var loaderType = loader.CreateType();

        assembly.SetCustomAttribute(new CustomAttributeBuilder(
            b.LoadableClassCtor,
            [instanceType, loaderType, null, b.SignatureLoadModelType, instanceType.Name, new[] { loaderSignature }]));
        return assembly;
    }

    // ----------------------------------------------------------------------------------------------------------------
    // Estimator plumbing.

    /// <summary>
    /// The environment behind a <see cref="TransformsCatalog"/> or a trainers catalog (ML.NET's internal
    /// <c>IInternalCatalog.Environment</c>, the route ML.NET's own extension methods use), for logging through
    /// <c>mlContext.Log</c>, for seeding and for the device settings.
    /// </summary>
    internal static IHostEnvironment GetEnvironment(object catalog)
    {
        ArgumentNullException.ThrowIfNull(catalog);
        var bindings = s_bindings.Value;
        if (!bindings.InternalCatalog.IsInstanceOfType(catalog))
            throw new ArgumentException($"{catalog.GetType().FullName} is not an ML.NET catalog (Microsoft.ML.Data.IInternalCatalog).", nameof(catalog));
        return (IHostEnvironment)bindings.CatalogEnvironment.GetValue(catalog)!;
    }

    /// <summary>
    /// <see cref="MLContext.GpuDeviceId"/> and <see cref="MLContext.FallbackToCpu"/> of the context behind
    /// <paramref name="env"/> (the public settings live on ML.NET's internal <c>IHostEnvironmentInternal</c>, which the
    /// context's environment and the hosts it registers implement).
    /// </summary>
    internal static (int? GpuDeviceId, bool FallbackToCpu) GetDeviceSettings(IHostEnvironment env)
    {
        ArgumentNullException.ThrowIfNull(env);
        var b = s_bindings.Value;
        if (!b.HostEnvironmentInternal.IsInstanceOfType(env))
            return (null, true);
        return ((int?)b.GpuDeviceId.GetValue(env), (bool)b.FallbackToCpu.GetValue(env)!);
    }

    /// <summary>A <see cref="SchemaShape.Column"/> through its internal constructor (ML.NET has no public one).</summary>
    internal static SchemaShape.Column NewSchemaShapeColumn(string name, SchemaShape.Column.VectorKind kind, DataViewType itemType, bool isKey, SchemaShape? annotations = null)
    {
        ArgumentException.ThrowIfNullOrEmpty(name);
        ArgumentNullException.ThrowIfNull(itemType);
        return (SchemaShape.Column)s_bindings.Value.SchemaShapeColumnCtor.Invoke([name, kind, itemType, isKey, annotations]);
    }

    /// <summary>The <see cref="SchemaShape"/> of a concrete schema (ML.NET's internal <c>SchemaShape.Create</c>; used by tests).</summary>
    internal static SchemaShape ToSchemaShape(DataViewSchema schema)
    {
        ArgumentNullException.ThrowIfNull(schema);
        return (SchemaShape)Invoke(s_bindings.Value.SchemaShapeCreate, null!, schema)!;
    }

    // ----------------------------------------------------------------------------------------------------------------
    // Save side.

    /// <summary>
    /// Writes the model header's version information and returns the main stream writer of <paramref name="ctx"/>.
    /// Call first in <see cref="ICanSaveModel.Save"/>.
    /// </summary>
    internal static BinaryWriter BeginSave(ModelSaveContext ctx, ModelVersion version)
    {
        ArgumentNullException.ThrowIfNull(ctx);
        var b = s_bindings.Value;
        GetLoadable(version.LoaderSignature); // must be registered, or the model could never be loaded
        Invoke(b.SaveCheckAtModel, ctx);
        Invoke(b.SaveSetVersionInfo, ctx, b.NewVersionInfo(version, LoaderAssemblyName(version.LoaderSignature)));
        return (BinaryWriter)b.SaveWriter.GetValue(ctx)!;
    }

    /// <summary>Writes a named binary stream next to the main stream (repository mode only).</summary>
    internal static void SaveBinaryStream(ModelSaveContext ctx, string name, Action<BinaryWriter> write)
    {
        ArgumentNullException.ThrowIfNull(ctx);
        var b = s_bindings.Value;
        if (!(bool)b.SaveInRepository.GetValue(ctx)!)
            throw new InvalidOperationException("This model can only be saved into a model repository (mlContext.Model.Save), not into a single stream.");
        Invoke(b.SaveSaveBinaryStream, ctx, name, write);
    }

    // ----------------------------------------------------------------------------------------------------------------
    // Load side.

    /// <summary>A typed view of ML.NET's internal <c>ModelLoadContext</c>.</summary>
    internal sealed class ModelLoadReader
    {
        private readonly object _ctx;

        internal ModelLoadReader(object ctx)
        {
            ArgumentNullException.ThrowIfNull(ctx);
            var b = s_bindings.Value;
            if (!b.ModelLoadContextType.IsInstanceOfType(ctx))
                throw new ArgumentException($"Expected {b.ModelLoadContextType}, got {ctx.GetType()}.", nameof(ctx));
            _ctx = ctx;
        }

        /// <summary>The main stream reader.</summary>
        public BinaryReader Reader => (BinaryReader)s_bindings.Value.LoadReader.GetValue(_ctx)!;

        /// <summary>Whether the model is read from a repository (so that binary side streams exist).</summary>
        public bool InRepository => (bool)s_bindings.Value.LoadInRepository.GetValue(_ctx)!;

        /// <summary>
        /// Checks that the reader is at the model's start and that the header's signature and versions are
        /// readable by <paramref name="version"/>; ML.NET throws a <see cref="FormatException"/>-like decode error otherwise.
        /// </summary>
        public void CheckAtModel(ModelVersion version)
        {
            var b = s_bindings.Value;
            Invoke(b.LoadCheckAtModel, _ctx, b.NewVersionInfo(version, LoaderAssemblyName(version.LoaderSignature)));
        }

        /// <summary>Reads a named binary stream; false if it does not exist.</summary>
        public bool TryLoadBinaryStream(string name, Action<BinaryReader> read)
        {
            if (!InRepository)
                return false;
            return (bool)Invoke(s_bindings.Value.LoadTryLoadBinaryStream, _ctx, name, read)!;
        }
    }

    // ----------------------------------------------------------------------------------------------------------------
    // Binding.

    private static object? Invoke(MethodInfo method, object? target, params object?[] args)
    {
        try
        {
            return method.Invoke(target, args);
        }
        catch (TargetInvocationException e) when (e.InnerException is not null)
        {
            System.Runtime.ExceptionServices.ExceptionDispatchInfo.Capture(e.InnerException).Throw();
            throw; // unreachable
        }
    }

    private static MissingMemberException Missing(string member) => new(
        $"Bn.MLNet needs the internal ML.NET member '{member}', which Microsoft.ML.Core {CoreVersion} does not have " +
        "(Bn.MLNet was built against Microsoft.ML 5.0.1). Saving and loading BatchNormCnn models needs a matching ML.NET version.");

    private static void CheckSignature(string value, int maxLength, string paramName)
    {
        ArgumentException.ThrowIfNullOrEmpty(value, paramName);
        if (value.Length > maxLength || value.Any(c => c > 0x7E || c < 0x20))
            throw new ArgumentException($"'{value}' must be 1 to {maxLength} printable ASCII characters.", paramName);
    }

    /// <summary>All reflective handles, bound eagerly so a mismatch is reported at once and by name.</summary>
    private sealed class Bindings
    {
        private const BindingFlags Inst = BindingFlags.Instance | BindingFlags.Public | BindingFlags.NonPublic;

        public Bindings()
        {
            CoreAssembly = typeof(ModelSaveContext).Assembly;
            if (CoreAssembly.GetName().Name != CoreAssemblySimpleName)
                throw Missing($"{typeof(ModelSaveContext).FullName} in assembly {CoreAssemblySimpleName} (found in {CoreAssembly.GetName().Name})");

            VersionInfoType = CoreType("Microsoft.ML.VersionInfo");
            ModelLoadContextType = CoreType("Microsoft.ML.ModelLoadContext");
            SignatureLoadModelType = CoreType("Microsoft.ML.SignatureLoadModel");
            var loadableClass = CoreType("Microsoft.ML.LoadableClassAttribute");

            VersionInfoCtor = VersionInfoType.GetConstructor(Inst, [typeof(string), typeof(uint), typeof(uint), typeof(uint), typeof(string), typeof(string), typeof(string)])
                ?? throw Missing("Microsoft.ML.VersionInfo..ctor(string, uint, uint, uint, string, string, string)");
            LoadableClassCtor = loadableClass.GetConstructor(Inst, [typeof(Type), typeof(Type), typeof(Type), typeof(Type), typeof(string), typeof(string[])])
                ?? throw Missing("Microsoft.ML.LoadableClassAttribute..ctor(Type, Type, Type, Type, string, params string[])");

            var save = typeof(ModelSaveContext);
            SaveCheckAtModel = Method(save, "CheckAtModel", Type.EmptyTypes);
            SaveSetVersionInfo = Method(save, "SetVersionInfo", [VersionInfoType]);
            SaveSaveBinaryStream = Method(save, "SaveBinaryStream", [typeof(string), typeof(Action<BinaryWriter>)]);
            SaveWriter = Field(save, "Writer", typeof(BinaryWriter));
            SaveInRepository = Property(save, "InRepository", typeof(bool));

            LoadCheckAtModel = Method(ModelLoadContextType, "CheckAtModel", [VersionInfoType]);
            LoadTryLoadBinaryStream = Method(ModelLoadContextType, "TryLoadBinaryStream", [typeof(string), typeof(Action<BinaryReader>)]);
            LoadReader = Field(ModelLoadContextType, "Reader", typeof(BinaryReader));
            LoadInRepository = Property(ModelLoadContextType, "InRepository", typeof(bool));
            if (LoadTryLoadBinaryStream.ReturnType != typeof(bool))
                throw Missing("bool Microsoft.ML.ModelLoadContext.TryLoadBinaryStream(string, Action<BinaryReader>)");

            SchemaShapeColumnCtor = typeof(SchemaShape.Column).GetConstructor(
                Inst, [typeof(string), typeof(SchemaShape.Column.VectorKind), typeof(DataViewType), typeof(bool), typeof(SchemaShape)])
                ?? throw Missing("Microsoft.ML.SchemaShape.Column..ctor(string, VectorKind, DataViewType, bool, SchemaShape)");

            SchemaShapeCreate = typeof(SchemaShape).GetMethod("Create", BindingFlags.Static | BindingFlags.Public | BindingFlags.NonPublic, [typeof(DataViewSchema)])
                ?? throw Missing("static Microsoft.ML.SchemaShape.Create(DataViewSchema)");

            var dataAssembly = typeof(TransformsCatalog).Assembly;
            var internalCatalog = dataAssembly.GetType("Microsoft.ML.Data.IInternalCatalog", throwOnError: false)
                ?? throw Missing($"Microsoft.ML.Data.IInternalCatalog (in {dataAssembly.GetName().Name})");
            CatalogEnvironment = internalCatalog.GetProperty("Environment", Inst) is { PropertyType: var envType } env && envType == typeof(IHostEnvironment)
                ? env
                : throw Missing("IHostEnvironment Microsoft.ML.Data.IInternalCatalog.Environment (property)");
            if (!internalCatalog.IsAssignableFrom(typeof(TransformsCatalog)))
                throw Missing("Microsoft.ML.TransformsCatalog : Microsoft.ML.Data.IInternalCatalog");
            if (!internalCatalog.IsAssignableFrom(typeof(TrainCatalogBase.CatalogInstantiatorBase)))
                throw Missing("Microsoft.ML.TrainCatalogBase.CatalogInstantiatorBase : Microsoft.ML.Data.IInternalCatalog");
            InternalCatalog = internalCatalog;

            HostEnvironmentInternal = CoreAssembly.GetType("Microsoft.ML.Runtime.IHostEnvironmentInternal", throwOnError: false)
                ?? throw Missing("Microsoft.ML.Runtime.IHostEnvironmentInternal");
            GpuDeviceId = HostEnvironmentInternal.GetProperty("GpuDeviceId", Inst) is { PropertyType: var gpuType } gpu && gpuType == typeof(int?)
                ? gpu
                : throw Missing("int? Microsoft.ML.Runtime.IHostEnvironmentInternal.GpuDeviceId (property)");
            FallbackToCpu = HostEnvironmentInternal.GetProperty("FallbackToCpu", Inst) is { PropertyType: var fallbackType } fallback && fallbackType == typeof(bool)
                ? fallback
                : throw Missing("bool Microsoft.ML.Runtime.IHostEnvironmentInternal.FallbackToCpu (property)");
        }

        public Type HostEnvironmentInternal { get; }
        public PropertyInfo GpuDeviceId { get; }
        public PropertyInfo FallbackToCpu { get; }

        public Type InternalCatalog { get; }

        public Assembly CoreAssembly { get; }
        public Type VersionInfoType { get; }
        public Type ModelLoadContextType { get; }
        public Type SignatureLoadModelType { get; }
        public ConstructorInfo VersionInfoCtor { get; }
        public ConstructorInfo LoadableClassCtor { get; }
        public MethodInfo SaveCheckAtModel { get; }
        public MethodInfo SaveSetVersionInfo { get; }
        public MethodInfo SaveSaveBinaryStream { get; }
        public FieldInfo SaveWriter { get; }
        public PropertyInfo SaveInRepository { get; }
        public MethodInfo LoadCheckAtModel { get; }
        public MethodInfo LoadTryLoadBinaryStream { get; }
        public FieldInfo LoadReader { get; }
        public PropertyInfo LoadInRepository { get; }
        public ConstructorInfo SchemaShapeColumnCtor { get; }
        public MethodInfo SchemaShapeCreate { get; }
        public PropertyInfo CatalogEnvironment { get; }

        public object NewVersionInfo(ModelVersion v, string loaderAssemblyName) =>
            VersionInfoCtor.Invoke([v.ModelSignature, v.VerWrittenCur, v.VerReadableCur, v.VerWeCanReadBack, loaderAssemblyName, v.LoaderSignature, null]);

        private Type CoreType(string fullName) =>
            CoreAssembly.GetType(fullName, throwOnError: false) ?? throw Missing(fullName);

        private static MethodInfo Method(Type type, string name, Type[] parameters) =>
            type.GetMethod(name, Inst, parameters)
            ?? throw Missing($"{type.FullName}.{name}({string.Join(", ", parameters.Select(p => p.Name))})");

        private static FieldInfo Field(Type type, string name, Type fieldType)
        {
            var f = type.GetField(name, Inst);
            return f is not null && f.FieldType == fieldType ? f : throw Missing($"{fieldType.Name} {type.FullName}.{name} (field)");
        }

        private static PropertyInfo Property(Type type, string name, Type propertyType)
        {
            var p = type.GetProperty(name, Inst);
            return p is not null && p.PropertyType == propertyType && p.GetMethod is not null
                ? p
                : throw Missing($"{propertyType.Name} {type.FullName}.{name} (property)");
        }
    }
}

/// <summary>
/// Version information of a saved model, mirrored into ML.NET's internal <c>VersionInfo</c>.
/// </summary>
/// <param name="ModelSignature">Exactly 8 ASCII characters identifying the model kind.</param>
/// <param name="VerWrittenCur">The format version this code writes.</param>
/// <param name="VerReadableCur">The oldest reader version that can read what this code writes.</param>
/// <param name="VerWeCanReadBack">The oldest written version this code can read.</param>
/// <param name="LoaderSignature">Loader signature (at most 24 characters) registered with <see cref="MLNetInternals.RegisterLoadable"/>.</param>
internal readonly record struct ModelVersion(string ModelSignature, uint VerWrittenCur, uint VerReadableCur, uint VerWeCanReadBack, string LoaderSignature);
