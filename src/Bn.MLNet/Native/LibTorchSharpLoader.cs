using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

namespace Bn.MLNet.Native;

/// <summary>
/// The run-time half of the Linux loader fix: before TorchSharp first loads, makes the <c>libLibTorchSharp.so</c>
/// that TorchSharp will open (the copy in the application's folder) loadable on a libstdc++ without
/// <c>GLIBCXX_3.4.32</c> (Debian 12, Ubuntu 22.04), exactly as the build step does: when that version need is bound
/// only to the unused marker symbol <c>_ZSt21ios_base_library_initv</c>, it is marked weak in a new copy that is
/// renamed over the old one. Runs once per process, on its own, as soon as any Bn.MLNet code runs (a failure there is
/// raised again when the first network or BatchNorm layer is built); call
/// <see cref="EnsureLoadable"/> yourself only if your application calls TorchSharp before touching any Bn.MLNet type.
/// </summary>
/// <remarks>
/// <para>Nothing happens on other operating systems, when the libstdc++ in use defines <c>GLIBCXX_3.4.32</c>, when the
/// copy is already patched (for example by the build step), or when the environment variable
/// <c>BNMLNET_PATCH_LIBTORCHSHARP</c> is <c>false</c>. Files inside a NuGet package folder are never written.</para>
/// </remarks>
public static class LibTorchSharpLoader
{
    /// <summary>Environment variable that switches the run-time patch off when set to <c>false</c> or <c>0</c>.</summary>
    public const string SwitchVariable = "BNMLNET_PATCH_LIBTORCHSHARP";

    private const string LibraryFile = "libLibTorchSharp.so";
    private static readonly object s_gate = new();
    private static bool s_done;

#pragma warning disable CA2255 // The module initializer is the point: the fix must run before any TorchSharp call.
    [ModuleInitializer]
#pragma warning restore CA2255
    internal static void OnModuleLoad()
    {
        // A module initializer that throws would make every Bn.MLNet type unusable for the rest of the process, and
        // hide the message behind a TypeInitializationException. The failure is not lost: EnsureLoadable runs again
        // (and throws its message) when the first network or BatchNorm layer is built, before it touches TorchSharp.
        try
        {
            EnsureLoadable();
        }
        catch (InvalidOperationException)
        {
        }
    }

    /// <summary>Runs <see cref="EnsureLoadable"/> and returns <paramref name="moduleName"/>, for module constructors' base calls.</summary>
    internal static string BeforeTorch(string moduleName)
    {
        EnsureLoadable();
        return moduleName;
    }

    /// <summary>
    /// Makes TorchSharp's native library loadable on this machine if only the GLIBCXX_3.4.32 marker stands in the way
    /// (see the class remarks). Idempotent and thread-safe; does nothing after the first successful call.
    /// </summary>
    /// <exception cref="InvalidOperationException">
    /// The library must be patched but cannot be: its folder is read-only, it lies inside a NuGet package folder,
    /// it is not the expected ELF file, or it really needs a newer libstdc++. The message names the file, the cause
    /// and the fix.
    /// </exception>
    public static void EnsureLoadable()
    {
        lock (s_gate)
        {
            if (s_done)
                return;
            if (OperatingSystem.IsLinux() && !SwitchedOff())
                PatchCandidates(FindLibStdCxx());
            s_done = true;
        }
    }

    /// <summary>For tests: patches the copies of libLibTorchSharp.so that TorchSharp would open from <paramref name="folders"/>.</summary>
    internal static IReadOnlyList<GlibcxxMarkerResult> PatchFolders(IEnumerable<string> folders, string libStdCxx)
    {
        var results = new List<GlibcxxMarkerResult>();
        if (GlibcxxMarkerPatch.DefinesNeededVersion(libStdCxx))
            return results;
        foreach (string path in Candidates(folders))
            results.Add(PatchOne(path, libStdCxx));
        return results;
    }

    private static void PatchCandidates(string? libStdCxx)
    {
        if (libStdCxx is null || DefinesNeededVersionOrUnreadable(libStdCxx))
            return;
        string? torchSharpFolder = Path.GetDirectoryName(typeof(TorchSharp.torch).Assembly.Location);
        var folders = new[] { torchSharpFolder, AppContext.BaseDirectory }.Where(f => !string.IsNullOrEmpty(f)).Select(f => f!);
        foreach (string path in Candidates(folders))
            PatchOne(path, libStdCxx);
    }

    /// <summary>An unreadable libstdc++ tells nothing; then the library is left as it is (as when the version is defined).</summary>
    private static bool DefinesNeededVersionOrUnreadable(string libStdCxx)
    {
        try
        {
            return GlibcxxMarkerPatch.DefinesNeededVersion(libStdCxx);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            return true;
        }
    }

    /// <summary>Where TorchSharp looks: the folder itself and runtimes/&lt;rid&gt;/native below it.</summary>
    private static IEnumerable<string> Candidates(IEnumerable<string> folders)
    {
        string rid = RuntimeInformation.ProcessArchitecture == Architecture.Arm64 ? "linux-arm64" : "linux-x64";
        return folders
            .SelectMany(f => new[] { Path.Combine(f, LibraryFile), Path.Combine(f, "runtimes", rid, "native", LibraryFile) })
            .Select(Path.GetFullPath)
            .Distinct(StringComparer.Ordinal)
            .Where(File.Exists);
    }

    private static GlibcxxMarkerResult PatchOne(string path, string libStdCxx)
    {
        const string fixes = "Fixes: build or publish the application on this machine (or one with the same libstdc++), so that Bn.MLNet's build step patches the copy; " +
                             "or install a libstdc++ from GCC 13 or newer";
        byte[] elf;
        GlibcxxMarkerResult found;
        try
        {
            elf = File.ReadAllBytes(path);
            found = GlibcxxMarkerPatch.Inspect(elf, path, libStdCxx);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException or InvalidDataException)
        {
            throw new InvalidOperationException(
                $"Bn.MLNet: TorchSharp's native library {path} is not the expected file ({ex.Message}); it cannot be checked for the {GlibcxxMarkerPatch.NeededVersion} need that {libStdCxx} cannot satisfy. " +
                $"Restore it from the TorchSharp package (rebuild the application). {fixes}.", ex);
        }

        if (found.Status == GlibcxxMarkerStatus.RealNeed)
        {
            throw new InvalidOperationException(
                $"Bn.MLNet: TorchSharp's native library cannot load on this machine: {found.Message} Bn.MLNet only marks the unused marker {GlibcxxMarkerPatch.MarkerSymbol} weak. " +
                "Fix: install a libstdc++ from GCC 13 or newer, or use a TorchSharp build linked for this distribution.");
        }

        if (found.Status != GlibcxxMarkerStatus.Patchable)
            return found;

        if (GlibcxxMarkerPatch.IsInNuGetPackage(path))
        {
            throw new InvalidOperationException(
                $"Bn.MLNet: TorchSharp's native library {path} needs {GlibcxxMarkerPatch.NeededVersion}, which {libStdCxx} lacks, and it lies inside a NuGet package folder, which Bn.MLNet never patches. " +
                $"Fix: run the application from its build or publish output (where the library is copied), not from the package cache. {fixes}.");
        }

        try
        {
            return GlibcxxMarkerPatch.PatchFile(path, libStdCxx);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            throw new InvalidOperationException(
                $"Bn.MLNet: TorchSharp's native library {path} needs {GlibcxxMarkerPatch.NeededVersion}, which {libStdCxx} lacks, only through the unused marker {GlibcxxMarkerPatch.MarkerSymbol}, " +
                $"but the copy cannot be patched because its folder {Path.GetDirectoryName(path)} is not writable ({ex.Message}). " +
                $"{fixes}; or make the folder writable for one run; or set {SwitchVariable}=false and supply a patched copy yourself.", ex);
        }
    }

    /// <summary>The libstdc++ this process has loaded (from /proc/self/maps), else the first of the usual paths.</summary>
    private static string? FindLibStdCxx()
    {
        try
        {
            foreach (string line in File.ReadLines("/proc/self/maps"))
            {
                int slash = line.IndexOf('/', StringComparison.Ordinal);
                if (slash >= 0 && line.Contains("/libstdc++.so.6", StringComparison.Ordinal))
                    return line[slash..].Trim();
            }
        }
        catch (IOException)
        {
        }
        catch (UnauthorizedAccessException)
        {
        }

        return GlibcxxMarkerPatch.FindLibStdCxx(GlibcxxMarkerPatch.DefaultLibStdCxxCandidates);
    }

    private static bool SwitchedOff()
    {
        string? value = Environment.GetEnvironmentVariable(SwitchVariable);
        return value is not null && (value.Equals("false", StringComparison.OrdinalIgnoreCase) || value == "0");
    }
}
