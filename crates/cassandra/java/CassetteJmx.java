// cassette's long-lived JMX client: the snapshot and clear-snapshot calls of a backup, and the
// imports of a restore, without a JVM start each (nodetool is a new JVM per command, about a
// second before it does anything).
//
// Uses only the JDK (javax.management), no Cassandra jar: operations are invoked by name on
// Cassandra's StorageService MBean. Their signatures differ by version (clearSnapshot takes an
// options map first since 5.0; 4.0 and 4.1 have only (tag, keyspaces)), so the client reads the
// operations the node's MBean offers (MBeanInfo) when it connects and calls the newest one it
// knows: no version to pass in, and right for any patch release that adds or drops one.
//
// Usage: java CassetteJmx HOST PORT
// A node with JMX authentication or TLS is reached as nodetool reaches it: the login comes from
// the environment (CASSETTE_JMX_USER, CASSETTE_JMX_PASSWORD), never the command line; with
// CASSETTE_JMX_TLS=1 it connects over TLS, its trust store from the "-Dname=value" lines of
// CASSETTE_JMX_SSL_PROPERTIES (the format of ~/.cassandra/nodetool-ssl.properties).
// It connects, prints "ready" (or "error<TAB>message" and exits), then answers one request per
// line on stdin with "ok" or "error<TAB>message" on stdout:
//   snapshot<TAB>TAG<TAB>ENTITY...       takeSnapshot(tag, {skipFlush=false}, entities):
//                                        entities are keyspaces, or keyspace.table
//   clearsnapshot<TAB>TAG<TAB>KEYSPACE... clearSnapshot({}, tag, keyspaces) on 5.0 and later,
//                                        clearSnapshot(tag, keyspaces) on 4.x (none: all)
//   import<TAB>KS<TAB>TABLE<TAB>COPY<TAB>KEEP_LEVEL<TAB>VERIFY<TAB>DIR...
//                                        the table's importNewSSTables(dirs, resetLevel,
//                                        clearRepaired, verifySSTables, verifyTokens,
//                                        invalidateCaches, extendedVerify, copyData), flags 0/1,
//                                        as `nodetool import` calls it; the directories it could
//                                        not import make the answer an error
// It exits when stdin closes. Fields never contain tabs or newlines (cassette checks).

import java.io.BufferedReader;
import java.nio.file.Files;
import java.nio.file.Paths;
import java.io.FileDescriptor;
import java.io.FileOutputStream;
import java.io.InputStreamReader;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.util.Arrays;
import java.util.HashMap;
import java.util.HashSet;
import java.util.Map;
import java.util.Set;
import javax.management.MBeanOperationInfo;
import javax.management.MBeanParameterInfo;
import javax.management.MBeanServerConnection;
import javax.management.ObjectName;
import javax.management.remote.JMXConnector;
import javax.management.remote.JMXConnectorFactory;
import javax.management.remote.JMXServiceURL;

public final class CassetteJmx {
    private static final String STORAGE_SERVICE = "org.apache.cassandra.db:type=StorageService";
    private static final String[] SNAPSHOT_SIGNATURE = {"java.lang.String", "java.util.Map", "[Ljava.lang.String;"};
    private static final String[] CLEAR_WITH_OPTIONS = {"java.util.Map", "java.lang.String", "[Ljava.lang.String;"};
    private static final String[] CLEAR_TAG_ONLY = {"java.lang.String", "[Ljava.lang.String;"};
    private static final String[] IMPORT_SIGNATURE = {"java.util.Set", "boolean", "boolean", "boolean", "boolean", "boolean", "boolean", "boolean"};

    public static void main(String[] args) throws Exception {
        PrintStream out = new PrintStream(new FileOutputStream(FileDescriptor.out), true, StandardCharsets.UTF_8);
        String host = args[0].contains(":") ? "[" + args[0] + "]" : args[0];
        JMXConnector connector;
        MBeanServerConnection mbeans;
        ObjectName storageService;
        boolean clearWithOptions;
        try {
            JMXServiceURL url = new JMXServiceURL("service:jmx:rmi:///jndi/rmi://" + host + ":" + args[1] + "/jmxrmi");
            connector = JMXConnectorFactory.connect(url, connectionEnvironment());
            mbeans = connector.getMBeanServerConnection();
            storageService = new ObjectName(STORAGE_SERVICE);
            // Proves that this is a Cassandra node that answers, before "ready".
            mbeans.getAttribute(storageService, "ReleaseVersion");
            Set<String> operations = operations(mbeans, storageService);
            if (!operations.contains(signature("takeSnapshot", SNAPSHOT_SIGNATURE))) {
                out.println("error\tthe node's StorageService MBean has no takeSnapshot(String, Map, String[])");
                return;
            }
            clearWithOptions = operations.contains(signature("clearSnapshot", CLEAR_WITH_OPTIONS));
            if (!clearWithOptions && !operations.contains(signature("clearSnapshot", CLEAR_TAG_ONLY))) {
                out.println("error\tthe node's StorageService MBean has no clearSnapshot operation this client knows");
                return;
            }
        } catch (Exception e) {
            out.println("error\t" + describe(e));
            return;
        }
        out.println("ready");
        BufferedReader in = new BufferedReader(new InputStreamReader(System.in, StandardCharsets.UTF_8));
        String line;
        while ((line = in.readLine()) != null) {
            String[] f = line.split("\t", -1);
            try {
                if (f[0].equals("snapshot") && f.length >= 3) {
                    Map<String, String> options = new HashMap<>();
                    options.put("skipFlush", "false");
                    Object[] params = {f[1], options, Arrays.copyOfRange(f, 2, f.length)};
                    mbeans.invoke(storageService, "takeSnapshot", params, SNAPSHOT_SIGNATURE);
                } else if (f[0].equals("clearsnapshot") && f.length >= 2) {
                    String[] keyspaces = Arrays.copyOfRange(f, 2, f.length);
                    if (clearWithOptions) {
                        Object[] params = {new HashMap<String, Object>(), f[1], keyspaces};
                        mbeans.invoke(storageService, "clearSnapshot", params, CLEAR_WITH_OPTIONS);
                    } else {
                        Object[] params = {f[1], keyspaces};
                        mbeans.invoke(storageService, "clearSnapshot", params, CLEAR_TAG_ONLY);
                    }
                } else if (f[0].equals("import") && f.length >= 7) {
                    java.util.List<?> failed = importSSTables(mbeans, f);
                    if (!failed.isEmpty()) {
                        out.println("error\tthe node could not import from " + failed + " (its system.log says why)");
                        continue;
                    }
                } else {
                    out.println("error\tunknown request: " + f[0]);
                    continue;
                }
                out.println("ok");
            } catch (Exception e) {
                out.println("error\t" + describe(e));
            }
        }
        connector.close();
    }

    /** A table's importNewSSTables, as nodetool's import calls it; returns the directories that failed. */
    private static java.util.List<?> importSSTables(MBeanServerConnection mbeans, String[] f) throws Exception {
        ObjectName table = new ObjectName("org.apache.cassandra.db:type=Tables,keyspace=" + f[1] + ",table=" + f[2]);
        boolean copy = f[3].equals("1"), keepLevel = f[4].equals("1"), verify = f[5].equals("1");
        Set<String> dirs = new HashSet<>(Arrays.asList(Arrays.copyOfRange(f, 6, f.length)));
        Object[] params = {dirs, !keepLevel, true, verify, true, true, false, copy};
        return (java.util.List<?>) mbeans.invoke(table, "importNewSSTables", params, IMPORT_SIGNATURE);
    }

    /** Credentials and TLS of the connection, as nodetool sets them for -u/-pw and --ssl. */
    private static Map<String, Object> connectionEnvironment() throws Exception {
        Map<String, Object> env = new HashMap<>();
        String user = System.getenv("CASSETTE_JMX_USER");
        if (user != null && !user.isEmpty()) {
            String password = System.getenv("CASSETTE_JMX_PASSWORD");
            env.put(JMXConnector.CREDENTIALS, new String[] {user, password == null ? "" : password});
        }
        if ("1".equals(System.getenv("CASSETTE_JMX_TLS"))) {
            String properties = System.getenv("CASSETTE_JMX_SSL_PROPERTIES");
            if (properties != null && !properties.isEmpty()) {
                for (String line : Files.readAllLines(Paths.get(properties), StandardCharsets.UTF_8)) {
                    for (String option : line.trim().split("\\s+")) {
                        if (!option.startsWith("-D")) continue;
                        int eq = option.indexOf('=');
                        if (eq > 2) System.setProperty(option.substring(2, eq), option.substring(eq + 1));
                    }
                }
            }
            env.put("com.sun.jndi.rmi.factory.socket", new javax.rmi.ssl.SslRMIClientSocketFactory());
        }
        return env;
    }

    /** Every operation of the MBean, as "name(type,type,...)". */
    private static Set<String> operations(MBeanServerConnection mbeans, ObjectName name) throws Exception {
        Set<String> found = new HashSet<>();
        for (MBeanOperationInfo op : mbeans.getMBeanInfo(name).getOperations()) {
            MBeanParameterInfo[] params = op.getSignature();
            String[] types = new String[params.length];
            for (int i = 0; i < params.length; i++) types[i] = params[i].getType();
            found.add(signature(op.getName(), types));
        }
        return found;
    }

    private static String signature(String name, String[] types) {
        return name + "(" + String.join(",", types) + ")";
    }

    /** The exception and its causes on one line (JMX wraps the node's own exception). */
    private static String describe(Throwable e) {
        StringBuilder s = new StringBuilder();
        for (Throwable t = e; t != null; t = t.getCause() == t ? null : t.getCause()) {
            if (s.length() > 0) s.append(" | caused by ");
            s.append(t.getClass().getName());
            if (t.getMessage() != null) s.append(": ").append(t.getMessage());
        }
        return s.toString().replace('\n', ' ').replace('\t', ' ');
    }
}
