using System.Diagnostics;
using System.Text;
using Bn.MLNet.Native;

namespace Bn.MLNet.Tests.Native;

/// <summary>
/// The run-time half of the Linux loader fix (<see cref="LibTorchSharpLoader"/>) on copies of TorchSharp's original
/// libLibTorchSharp.so from the NuGet cache, with a stand-in libstdc++ that lacks GLIBCXX_3.4.32 (so the tests mean
/// the same on every machine), and a consumer app outside the repository whose build step is off.
/// </summary>
[System.Runtime.Versioning.SupportedOSPlatform("linux")]
public class LibTorchSharpLoaderTests
{
    private const string Rid = "linux-x64";

    [Fact]
    public void PatchesTheAppCopyOnlyThroughANewFileNeverThroughAHardLink()
    {
        using var dir = new TempDir("bnmlnet-loader-");
        string original = Path.Combine(dir.Path, "original", "libLibTorchSharp.so");
        Directory.CreateDirectory(Path.GetDirectoryName(original)!);
        File.Copy(OriginalLibrary(), original);
        string app = Path.Combine(dir.Path, "app");
        string copy = NativeFolder(app, "libLibTorchSharp.so");
        Link(original, copy);
        DateTime stamp = File.GetLastWriteTimeUtc(copy);

        var results = LibTorchSharpLoader.PatchFolders([app], FakeLibStdCxx(dir.Path));

        Assert.Equal(GlibcxxMarkerStatus.Patched, Assert.Single(results).Status);
        Assert.Equal(GlibcxxMarkerStatus.AlreadyWeak, Inspect(copy).Status);
        Assert.Equal(GlibcxxMarkerStatus.Patchable, Inspect(original).Status);
        Assert.Equal(File.ReadAllBytes(OriginalLibrary()), File.ReadAllBytes(original));
        byte[] before = File.ReadAllBytes(original), after = File.ReadAllBytes(copy);
        Assert.Equal(before.Length, after.Length);
        Assert.Equal(1, before.Zip(after).Count(p => p.First != p.Second));
        Assert.Equal(stamp, File.GetLastWriteTimeUtc(copy));
        Assert.Empty(Directory.GetFiles(Path.GetDirectoryName(copy)!, "*.bnmlnet-tmp"));

        Assert.Equal(GlibcxxMarkerStatus.AlreadyWeak, Assert.Single(LibTorchSharpLoader.PatchFolders([app], FakeLibStdCxx(dir.Path))).Status);
    }

    [Fact]
    public void DoesNothingWhenTheLibStdCxxDefinesTheVersion()
    {
        using var dir = new TempDir("bnmlnet-loader-");
        string copy = NativeFolder(Path.Combine(dir.Path, "app"), "libLibTorchSharp.so");
        File.Copy(OriginalLibrary(), copy);
        string newer = Path.Combine(dir.Path, "libstdc++.so.6");
        File.WriteAllBytes(newer, Encoding.ASCII.GetBytes("GLIBCXX_3.4.31\0GLIBCXX_3.4.32\0"));

        Assert.Empty(LibTorchSharpLoader.PatchFolders([Path.Combine(dir.Path, "app")], newer));
        Assert.Equal(File.ReadAllBytes(OriginalLibrary()), File.ReadAllBytes(copy));
    }

    [Fact]
    public void ARealNeedOfTheNewerLibStdCxxIsRefusedNamingTheSymbolAndTheFix()
    {
        using var dir = new TempDir("bnmlnet-loader-");
        string copy = NativeFolder(Path.Combine(dir.Path, "app"), "libLibTorchSharp.so");
        byte[] elf = File.ReadAllBytes(OriginalLibrary());
        byte[] marker = Encoding.ASCII.GetBytes(GlibcxxMarkerPatch.MarkerSymbol + "\0");
        int at = elf.AsSpan().IndexOf(marker);
        Assert.True(at > 0);
        elf[at + marker.Length - 2] = (byte)'X'; // the symbol bound to GLIBCXX_3.4.32 is now another one
        File.WriteAllBytes(copy, elf);

        var ex = Assert.Throws<InvalidOperationException>(() => LibTorchSharpLoader.PatchFolders([Path.Combine(dir.Path, "app")], FakeLibStdCxx(dir.Path)));
        Assert.Contains(copy, ex.Message);
        Assert.Contains("_ZSt21ios_base_library_initX", ex.Message);
        Assert.Contains("GCC 13 or newer", ex.Message);
        Assert.Equal(elf, File.ReadAllBytes(copy));
    }

    [Fact]
    public void AFileThatIsNotTheExpectedLibraryIsRefusedNamingIt()
    {
        using var dir = new TempDir("bnmlnet-loader-");
        string copy = NativeFolder(Path.Combine(dir.Path, "app"), "libLibTorchSharp.so");
        File.WriteAllText(copy, "not a shared library");

        var ex = Assert.Throws<InvalidOperationException>(() => LibTorchSharpLoader.PatchFolders([Path.Combine(dir.Path, "app")], FakeLibStdCxx(dir.Path)));
        Assert.Contains(copy, ex.Message);
        Assert.Contains("not the expected file (not an ELF file)", ex.Message);
        Assert.Contains("rebuild the application", ex.Message);
    }

    [Fact]
    public void ACopyInsideANuGetPackageFolderIsNeverPatched()
    {
        using var dir = new TempDir("bnmlnet-loader-");
        string package = Path.Combine(dir.Path, "torchsharp", "0.107.0");
        string copy = NativeFolder(package, "libLibTorchSharp.so");
        File.Copy(OriginalLibrary(), copy);
        File.WriteAllText(Path.Combine(package, ".nupkg.metadata"), "{}");

        var ex = Assert.Throws<InvalidOperationException>(() => LibTorchSharpLoader.PatchFolders([package], FakeLibStdCxx(dir.Path)));
        Assert.Contains(copy, ex.Message);
        Assert.Contains("inside a NuGet package folder", ex.Message);
        Assert.Equal(File.ReadAllBytes(OriginalLibrary()), File.ReadAllBytes(copy));
    }

    [Fact]
    public void AReadOnlyFolderIsRefusedNamingTheFolderAndTheFixes()
    {
        using var dir = new TempDir("bnmlnet-loader-");
        string copy = NativeFolder(Path.Combine(dir.Path, "app"), "libLibTorchSharp.so");
        File.Copy(OriginalLibrary(), copy);
        string folder = Path.GetDirectoryName(copy)!;
        // root ignores permission bits, so make the folder immutable there instead.
        bool root = Environment.UserName == "root";
        if (root)
            Run("chattr", $"+i {folder}", dir.Path);
        else
            File.SetUnixFileMode(folder, UnixFileMode.UserRead | UnixFileMode.UserExecute);
        try
        {
            var ex = Assert.Throws<InvalidOperationException>(() => LibTorchSharpLoader.PatchFolders([Path.Combine(dir.Path, "app")], FakeLibStdCxx(dir.Path)));
            Assert.Contains(copy, ex.Message);
            Assert.Contains($"its folder {folder} is not writable", ex.Message);
            Assert.Contains("build or publish the application on this machine", ex.Message);
            Assert.Contains(LibTorchSharpLoader.SwitchVariable, ex.Message);
        }
        finally
        {
            if (root)
                Run("chattr", $"-i {folder}", dir.Path);
            else
                File.SetUnixFileMode(folder, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        }

        Assert.Equal(File.ReadAllBytes(OriginalLibrary()), File.ReadAllBytes(copy));
    }

    /// <summary>
    /// An app outside the repository that references src/Bn.MLNet/Bn.MLNet.csproj gets no build step (it neither
    /// imports the package's buildTransitive nor this repository's Directory.Build.targets, and the step is switched
    /// off as well): its output holds TorchSharp's unpatched library, and the run-time path must make it load.
    /// </summary>
    [Fact]
    public void AConsumerOutsideTheRepositoryBuiltWithoutThePatchStepLoadsLibTorch()
    {
        using var dir = new TempDir("bnmlnet-consumer-");
        string project = Path.Combine(RepoRoot(), "src", "Bn.MLNet", "Bn.MLNet.csproj");
        File.WriteAllText(Path.Combine(dir.Path, "Consumer.csproj"), $"""
            <Project Sdk="Microsoft.NET.Sdk">
              <PropertyGroup>
                <OutputType>Exe</OutputType>
                <TargetFramework>net10.0</TargetFramework>
                <ImplicitUsings>enable</ImplicitUsings>
                <Nullable>enable</Nullable>
                <PlatformTarget>x64</PlatformTarget>
              </PropertyGroup>
              <ItemGroup>
                <ProjectReference Include="{project}" />
              </ItemGroup>
            </Project>
            """);
        File.WriteAllText(Path.Combine(dir.Path, "Program.cs"), """
            using Bn.MLNet.Networks;
            using TorchSharp;

            // No explicit call: touching a Bn.MLNet type runs its module initializer before TorchSharp loads.
            using var network = new BatchNormCnnNetwork(NetworkArchitecture.Default());
            using var x = torch.ones(2, 1, 28, 28);
            network.eval();
            using var y = network.forward(x);
            Console.WriteLine($"loaded {string.Join('x', y.shape)}");
            """);

        var build = Run("dotnet", "build -c Release -p:BnMLNetPatchLibTorchSharp=false -o out", dir.Path, TimeSpan.FromMinutes(5));
        Assert.True(build.ExitCode == 0, build.Output);
        Assert.DoesNotContain("Bn.MLNet: marked", build.Output);
        string library = Path.Combine(dir.Path, "out", "runtimes", Rid, "native", "libLibTorchSharp.so");
        Assert.Equal(GlibcxxMarkerStatus.Patchable, Inspect(library).Status);

        var run = Run("dotnet", Path.Combine(dir.Path, "out", "Consumer.dll"), dir.Path, TimeSpan.FromMinutes(2));
        Assert.True(run.ExitCode == 0, run.Output);
        Assert.Contains("loaded 2x10", run.Output);
        Assert.Equal(GlibcxxMarkerStatus.AlreadyWeak, Inspect(library).Status);
    }

    private static GlibcxxMarkerResult Inspect(string path) => GlibcxxMarkerPatch.Inspect(File.ReadAllBytes(path), path, "libstdc++");

    /// <summary>TorchSharp's original library, as the package ships it (read, never written).</summary>
    private static string OriginalLibrary()
    {
        string cache = Environment.GetEnvironmentVariable("NUGET_PACKAGES")
            ?? Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".nuget", "packages");
        string version = typeof(TorchSharp.torch).Assembly.GetName().Version!.ToString(3);
        string path = Path.Combine(cache, "torchsharp", version, "runtimes", Rid, "native", "libLibTorchSharp.so");
        Assert.True(File.Exists(path), $"TorchSharp's package is not in the NuGet cache: {path}");
        return path;
    }

    private static string FakeLibStdCxx(string dir)
    {
        string path = Path.Combine(dir, "libstdc++.so.6");
        if (!File.Exists(path))
            File.WriteAllBytes(path, Encoding.ASCII.GetBytes("GLIBCXX_3.4.29\0GLIBCXX_3.4.30\0"));
        return path;
    }

    private static string NativeFolder(string app, string file)
    {
        string folder = Path.Combine(app, "runtimes", Rid, "native");
        Directory.CreateDirectory(folder);
        return Path.Combine(folder, file);
    }

    private static void Link(string target, string link)
    {
        var r = Run("ln", $"{target} {link}", Path.GetDirectoryName(link)!);
        Assert.True(r.ExitCode == 0, r.Output);
    }

    private static string RepoRoot()
    {
        for (var d = new DirectoryInfo(AppContext.BaseDirectory); d is not null; d = d.Parent)
        {
            if (File.Exists(Path.Combine(d.FullName, "Bn.MLNet.slnx")))
                return d.FullName;
        }

        throw new InvalidOperationException("Bn.MLNet.slnx not found above the test output.");
    }

    private static (int ExitCode, string Output) Run(string file, string arguments, string workingDirectory, TimeSpan? timeout = null)
    {
        var info = new ProcessStartInfo(file, arguments)
        {
            WorkingDirectory = workingDirectory,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
        };
        info.Environment["DOTNET_CLI_TELEMETRY_OPTOUT"] = "1";
        info.Environment["OMP_WAIT_POLICY"] = "PASSIVE";
        info.Environment.Remove(LibTorchSharpLoader.SwitchVariable);
        using var process = Process.Start(info)!;
        var stdout = process.StandardOutput.ReadToEndAsync();
        var stderr = process.StandardError.ReadToEndAsync();
        if (!process.WaitForExit(timeout ?? TimeSpan.FromSeconds(30)))
        {
            process.Kill(entireProcessTree: true);
            throw new TimeoutException($"{file} {arguments} did not finish in time.");
        }

        return (process.ExitCode, stdout.Result + stderr.Result);
    }

    private sealed class TempDir : IDisposable
    {
        public TempDir(string prefix) => Path = Directory.CreateTempSubdirectory(prefix).FullName;

        public string Path { get; }

        public void Dispose() => Directory.Delete(Path, recursive: true);
    }
}
