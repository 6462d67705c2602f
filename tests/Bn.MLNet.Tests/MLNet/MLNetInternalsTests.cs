using System.Reflection;
using Microsoft.ML;
using Microsoft.ML.Runtime;
using Microsoft.ML.Data;

namespace Bn.MLNet.Tests.MLNet;

/// <summary>
/// Proves the reflective save/load path with a tiny transformer that carries a few numbers, independent of the network.
/// If an ML.NET update changes an internal member we use, these tests fail with a message naming it.
/// </summary>
public class MLNetInternalsTests
{
    [Fact]
    public void EveryInternalMemberBinds()
    {
        // Throws MissingMemberException naming the member if ML.NET changed.
        MLNetInternals.Verify();
        Assert.Equal(MLNetInternals.CoreAssemblySimpleName, typeof(ModelSaveContext).Assembly.GetName().Name);
    }

    [Fact]
    public void MissingMemberMessageNamesTheMember()
    {
        // The binder's message format, exercised through a member that does not exist.
        var ex = Assert.Throws<MissingMemberException>(() => ProbeBinder.BindMissing());
        Assert.Contains("Microsoft.ML.ModelSaveContext.NoSuchMember", ex.Message);
        Assert.Contains("Microsoft.ML.Core", ex.Message);
    }

    [Fact]
    public void EmittedLoaderAssemblyCarriesLoadableClassAttribute()
    {
        ProbeTransformer.EnsureRegistered();
        var asm = MLNetInternals.GetLoaderAssembly(ProbeTransformer.LoaderSignature);
        Assert.Equal(MLNetInternals.LoaderAssemblyName(ProbeTransformer.LoaderSignature), asm.GetName().Name);
        var core = typeof(ModelSaveContext).Assembly;
        var attrBase = core.GetType("Microsoft.ML.LoadableClassAttributeBase", throwOnError: true)!;
        // This is exactly the call ComponentCatalog.RegisterAssembly makes; it only sees the attribute if the runtime
        // honours IgnoresAccessChecksTo("Microsoft.ML.Core") on the emitted assembly.
        var attrs = asm.GetCustomAttributes(attrBase).ToArray();
        Assert.Single(attrs);
        var loadNames = (string[])attrBase.GetProperty("LoadNames")!.GetValue(attrs[0])!;
        Assert.Equal([ProbeTransformer.LoaderSignature], loadNames);
        Assert.Equal(typeof(ProbeTransformer), attrBase.GetProperty("InstanceType")!.GetValue(attrs[0]));
    }

    [Fact]
    public void AssemblyLoadByNameFindsTheEmittedLoader()
    {
        ProbeTransformer.EnsureRegistered();
        // ML.NET calls Assembly.Load(header.LoaderAssemblyName) before looking up the loader signature.
        var asm = Assembly.Load(MLNetInternals.LoaderAssemblyName(ProbeTransformer.LoaderSignature));
        // The runtime hands back the emitted assembly's runtime object, not the AssemblyBuilder wrapper.
        Assert.Equal(MLNetInternals.GetLoaderAssembly(ProbeTransformer.LoaderSignature).FullName, asm.FullName);
        Assert.True(asm.IsDynamic);
        Assert.NotNull(asm.GetType("Bn.MLNet.ModelLoaders." + ProbeTransformer.LoaderSignature));
    }

    [Fact]
    public void SaveThenLoadInFreshContextRoundTripsNumbersAndSideStream()
    {
        ProbeTransformer.EnsureRegistered();
        var dir = Directory.CreateTempSubdirectory("bnmlnet-probe-");
        try
        {
            var path = Path.Combine(dir.FullName, "probe.zip");
            var ml = new MLContext(seed: 1);
            var data = ml.Data.LoadFromEnumerable(new[] { new Row { X = 1 }, new Row { X = 2 } });
            var probe = new ProbeTransformer([1.5f, -2.25f, 3e-7f, float.MaxValue], "side stream text");
            ml.Model.Save(probe, data.Schema, path);

            // A new MLContext has its own ComponentCatalog; nothing is registered in it explicitly.
            var fresh = new MLContext(seed: 2);
            var loaded = fresh.Model.Load(path, out var schema);
            var back = Assert.IsType<ProbeTransformer>(loaded);
            Assert.Equal(probe.Values, back.Values);
            Assert.Equal("side stream text", back.Side);
            Assert.Equal("X", schema[0].Name);
        }
        finally
        {
            dir.Delete(recursive: true);
        }
    }

    [Fact]
    public void ProbeInsideTransformerChainRoundTrips()
    {
        ProbeTransformer.EnsureRegistered();
        var dir = Directory.CreateTempSubdirectory("bnmlnet-probe-");
        try
        {
            var path = Path.Combine(dir.FullName, "chain.zip");
            var ml = new MLContext(seed: 1);
            var data = ml.Data.LoadFromEnumerable(new[] { new Row { X = 1 }, new Row { X = 2 } });
            var chain = ml.Transforms.CopyColumns("Y", "X").Fit(data).Append(new ProbeTransformer([42f], "chained"));
            ml.Model.Save(chain, data.Schema, path);

            var loaded = new MLContext(seed: 3).Model.Load(path, out _);
            var loadedChain = Assert.IsType<TransformerChain<ITransformer>>(loaded);
            var back = Assert.IsType<ProbeTransformer>(loadedChain.Last());
            Assert.Equal([42f], back.Values);
            Assert.Equal("chained", back.Side);
        }
        finally
        {
            dir.Delete(recursive: true);
        }
    }

    [Fact]
    public void ChildProcessLoadsTheProbe()
    {
        ProbeTransformer.EnsureRegistered();
        var dir = Directory.CreateTempSubdirectory("bnmlnet-probe-");
        try
        {
            var path = Path.Combine(dir.FullName, "probe.zip");
            var ml = new MLContext(seed: 1);
            var data = ml.Data.LoadFromEnumerable(new[] { new Row { X = 1 } });
            ml.Model.Save(new ProbeTransformer([0.1f, 7f], "child"), data.Schema, path);

            var (code, stdout, stderr) = ChildProcessProgram.Run("probe", path);
            Assert.True(code == 0, stderr);
            Assert.Equal("0.1 7 child", stdout.Trim());

            // Without touching Bn.MLNet first, the emitted loader's name cannot be resolved: the documented reason
            // scoring-only apps call RegisterBatchNormCnn() (or use any Bn.MLNet type) before loading.
            (code, _, stderr) = ChildProcessProgram.Run("bare", path);
            Assert.Equal(1, code);
            Assert.Contains(MLNetInternals.LoaderAssemblyName(ProbeTransformer.LoaderSignature), stderr);
        }
        finally
        {
            dir.Delete(recursive: true);
        }
    }

    [Fact]
    public void NewerFormatVersionIsRefusedByHeaderCheck()
    {
        ProbeTransformer.EnsureRegistered();
        var dir = Directory.CreateTempSubdirectory("bnmlnet-probe-");
        try
        {
            var path = Path.Combine(dir.FullName, "newer.zip");
            var ml = new MLContext(seed: 1);
            var data = ml.Data.LoadFromEnumerable(new[] { new Row { X = 1 } });
            ml.Model.Save(new ProbeTransformer([1f], "x") { SaveAsNewerVersion = true }, data.Schema, path);
            var ex = Record.Exception(() => new MLContext(seed: 2).Model.Load(path, out _));
            // ML.NET's own header check (ModelLoadContext.CheckAtModel(VersionInfo)) refuses it; ML.NET wraps the
            // loader's exception in "Error during class instantiation".
            var format = Assert.IsType<FormatException>(Innermost(ex));
            Assert.Contains("too new", format.Message);
        }
        finally
        {
            dir.Delete(recursive: true);
        }
    }

    internal static Exception? Innermost(Exception? e)
    {
        while (e?.InnerException is not null)
            e = e.InnerException;
        return e;
    }

    public sealed class Row
    {
        public float X { get; set; }
    }

    private static class ProbeBinder
    {
        public static void BindMissing()
        {
            // Same failure path as MLNetInternals uses: a MissingMemberException built by the internals file.
            var m = typeof(MLNetInternals).GetMethod("Missing", BindingFlags.Static | BindingFlags.NonPublic)!;
            throw (MissingMemberException)m.Invoke(null, ["Microsoft.ML.ModelSaveContext.NoSuchMember()"])!;
        }
    }
}

/// <summary>A transformer that passes data through and saves a few numbers plus a side stream.</summary>
public sealed class ProbeTransformer : ITransformer
{
    internal const string LoaderSignature = "BnMLNetProbeTransformer";
    private static readonly ModelVersion Version = new("BNPROBE ", 0x00010001, 0x00010001, 0x00010001, LoaderSignature);
    private static readonly ModelVersion NewerVersion = new("BNPROBE ", 0x00020001, 0x00020001, 0x00020001, LoaderSignature);

    static ProbeTransformer() =>
        MLNetInternals.RegisterLoadable(typeof(ProbeTransformer), LoaderSignature, (env, ctx) => Load(ctx));

    public ProbeTransformer(float[] values, string side)
    {
        Values = values;
        Side = side;
    }

    public float[] Values { get; }

    public string Side { get; }

    internal bool SaveAsNewerVersion { get; init; }

    public bool IsRowToRowMapper => false;

    internal static void EnsureRegistered() { }

    public DataViewSchema GetOutputSchema(DataViewSchema inputSchema) => inputSchema;

    public IRowToRowMapper GetRowToRowMapper(DataViewSchema inputSchema) => throw new NotSupportedException();

    public IDataView Transform(IDataView input) => input;

    public void Save(ModelSaveContext ctx)
    {
        // Binary format: int count, count × float.  Side stream "Probe.bin": string.
        var w = MLNetInternals.BeginSave(ctx, SaveAsNewerVersion ? NewerVersion : Version);
        w.Write(Values.Length);
        foreach (var v in Values)
            w.Write(v);
        MLNetInternals.SaveBinaryStream(ctx, "Probe.bin", bw => bw.Write(Side));
    }

    private static ProbeTransformer Load(MLNetInternals.ModelLoadReader ctx)
    {
        ctx.CheckAtModel(Version);
        var r = ctx.Reader;
        int n = r.ReadInt32();
        var values = new float[n];
        for (int i = 0; i < n; i++)
            values[i] = r.ReadSingle();
        string? side = null;
        Assert.True(ctx.TryLoadBinaryStream("Probe.bin", br => side = br.ReadString()));
        return new ProbeTransformer(values, side!);
    }
}
